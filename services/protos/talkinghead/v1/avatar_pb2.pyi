from services.protos.talkinghead.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpeakRequest(_message.Message):
    __slots__ = ("text", "audio", "subject", "lang", "voice", "fps", "static_pose", "denoise", "frames_per_chunk")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    STATIC_POSE_FIELD_NUMBER: _ClassVar[int]
    DENOISE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_CHUNK_FIELD_NUMBER: _ClassVar[int]
    text: str
    audio: _common_pb2.AudioClip
    subject: str
    lang: str
    voice: str
    fps: float
    static_pose: bool
    denoise: bool
    frames_per_chunk: int
    def __init__(self, text: _Optional[str] = ..., audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., subject: _Optional[str] = ..., lang: _Optional[str] = ..., voice: _Optional[str] = ..., fps: _Optional[float] = ..., static_pose: bool = ..., denoise: bool = ..., frames_per_chunk: _Optional[int] = ...) -> None: ...

class ListSubjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSubjectsResponse(_message.Message):
    __slots__ = ("subjects", "degraded")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    subjects: _containers.RepeatedCompositeFieldContainer[_common_pb2.SubjectInfo]
    degraded: bool
    def __init__(self, subjects: _Optional[_Iterable[_Union[_common_pb2.SubjectInfo, _Mapping]]] = ..., degraded: bool = ...) -> None: ...

class GetSubjectRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
