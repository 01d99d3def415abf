from services.protos.talkinghead.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConverseRequest(_message.Message):
    __slots__ = ("open", "speak", "interrupt")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    SPEAK_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_FIELD_NUMBER: _ClassVar[int]
    open: ConverseOpen
    speak: ConverseSpeak
    interrupt: ConverseInterrupt
    def __init__(self, open: _Optional[_Union[ConverseOpen, _Mapping]] = ..., speak: _Optional[_Union[ConverseSpeak, _Mapping]] = ..., interrupt: _Optional[_Union[ConverseInterrupt, _Mapping]] = ...) -> None: ...

class ConverseOpen(_message.Message):
    __slots__ = ("offer_sdp", "subject")
    OFFER_SDP_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    offer_sdp: str
    subject: str
    def __init__(self, offer_sdp: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...

class ConverseSpeak(_message.Message):
    __slots__ = ("text", "audio", "lang", "voice", "denoise")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    DENOISE_FIELD_NUMBER: _ClassVar[int]
    text: str
    audio: _common_pb2.AudioClip
    lang: str
    voice: str
    denoise: bool
    def __init__(self, text: _Optional[str] = ..., audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., lang: _Optional[str] = ..., voice: _Optional[str] = ..., denoise: bool = ...) -> None: ...

class ConverseInterrupt(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConverseEvent(_message.Message):
    __slots__ = ("opened", "queued", "state", "interrupted", "error")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    opened: ConverseOpened
    queued: ConverseQueued
    state: ConverseState
    interrupted: ConverseInterrupted
    error: ConverseError
    def __init__(self, opened: _Optional[_Union[ConverseOpened, _Mapping]] = ..., queued: _Optional[_Union[ConverseQueued, _Mapping]] = ..., state: _Optional[_Union[ConverseState, _Mapping]] = ..., interrupted: _Optional[_Union[ConverseInterrupted, _Mapping]] = ..., error: _Optional[_Union[ConverseError, _Mapping]] = ...) -> None: ...

class ConverseOpened(_message.Message):
    __slots__ = ("session_id", "answer_sdp")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_SDP_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    answer_sdp: str
    def __init__(self, session_id: _Optional[str] = ..., answer_sdp: _Optional[str] = ...) -> None: ...

class ConverseQueued(_message.Message):
    __slots__ = ("utterance", "queued")
    UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    utterance: int
    queued: int
    def __init__(self, utterance: _Optional[int] = ..., queued: _Optional[int] = ...) -> None: ...

class ConverseState(_message.Message):
    __slots__ = ("state", "utterance", "media_seconds", "pts")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PTS_FIELD_NUMBER: _ClassVar[int]
    state: str
    utterance: int
    media_seconds: float
    pts: int
    def __init__(self, state: _Optional[str] = ..., utterance: _Optional[int] = ..., media_seconds: _Optional[float] = ..., pts: _Optional[int] = ...) -> None: ...

class ConverseInterrupted(_message.Message):
    __slots__ = ("utterances",)
    UTTERANCES_FIELD_NUMBER: _ClassVar[int]
    utterances: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, utterances: _Optional[_Iterable[int]] = ...) -> None: ...

class ConverseError(_message.Message):
    __slots__ = ("utterance", "code", "message")
    UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    utterance: int
    code: str
    message: str
    def __init__(self, utterance: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

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
