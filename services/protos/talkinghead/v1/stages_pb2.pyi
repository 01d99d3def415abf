from services.protos.talkinghead.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "lang", "voice", "length_scale")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_SCALE_FIELD_NUMBER: _ClassVar[int]
    text: str
    lang: str
    voice: str
    length_scale: float
    def __init__(self, text: _Optional[str] = ..., lang: _Optional[str] = ..., voice: _Optional[str] = ..., length_scale: _Optional[float] = ...) -> None: ...

class SynthesizeResponse(_message.Message):
    __slots__ = ("audio", "phonemes", "syllables", "sentence_index", "text", "voice")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    PHONEMES_FIELD_NUMBER: _ClassVar[int]
    SYLLABLES_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    audio: _common_pb2.AudioClip
    phonemes: _containers.RepeatedCompositeFieldContainer[_common_pb2.PhonemeTiming]
    syllables: _containers.RepeatedCompositeFieldContainer[_common_pb2.PhonemeTiming]
    sentence_index: int
    text: str
    voice: str
    def __init__(self, audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., phonemes: _Optional[_Iterable[_Union[_common_pb2.PhonemeTiming, _Mapping]]] = ..., syllables: _Optional[_Iterable[_Union[_common_pb2.PhonemeTiming, _Mapping]]] = ..., sentence_index: _Optional[int] = ..., text: _Optional[str] = ..., voice: _Optional[str] = ...) -> None: ...

class EnhanceRequest(_message.Message):
    __slots__ = ("audio", "model")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    audio: _common_pb2.AudioClip
    model: str
    def __init__(self, audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., model: _Optional[str] = ...) -> None: ...

class EnhanceResponse(_message.Message):
    __slots__ = ("audio", "model")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    audio: _common_pb2.AudioClip
    model: str
    def __init__(self, audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., model: _Optional[str] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("audio", "subject", "lang", "fps")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    audio: _common_pb2.AudioClip
    subject: str
    lang: str
    fps: float
    def __init__(self, audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ..., subject: _Optional[str] = ..., lang: _Optional[str] = ..., fps: _Optional[float] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("codes",)
    CODES_FIELD_NUMBER: _ClassVar[int]
    codes: _common_pb2.AudioCodes
    def __init__(self, codes: _Optional[_Union[_common_pb2.AudioCodes, _Mapping]] = ...) -> None: ...

class ComputeMelRequest(_message.Message):
    __slots__ = ("audio",)
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    audio: _common_pb2.AudioClip
    def __init__(self, audio: _Optional[_Union[_common_pb2.AudioClip, _Mapping]] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("subject", "codes", "conditions", "frames_per_batch")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    subject: str
    codes: _common_pb2.AudioCodes
    conditions: _common_pb2.FrameConditions
    frames_per_batch: int
    def __init__(self, subject: _Optional[str] = ..., codes: _Optional[_Union[_common_pb2.AudioCodes, _Mapping]] = ..., conditions: _Optional[_Union[_common_pb2.FrameConditions, _Mapping]] = ..., frames_per_batch: _Optional[int] = ...) -> None: ...
