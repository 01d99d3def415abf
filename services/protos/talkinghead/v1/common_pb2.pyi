from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AudioClip(_message.Message):
    __slots__ = ("pcm_f32le", "encoded", "sample_rate")
    PCM_F32LE_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    pcm_f32le: bytes
    encoded: bytes
    sample_rate: int
    def __init__(self, pcm_f32le: _Optional[bytes] = ..., encoded: _Optional[bytes] = ..., sample_rate: _Optional[int] = ...) -> None: ...

class PhonemeTiming(_message.Message):
    __slots__ = ("phoneme", "start_s", "end_s")
    PHONEME_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    phoneme: str
    start_s: float
    end_s: float
    def __init__(self, phoneme: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ...) -> None: ...

class Mel(_message.Message):
    __slots__ = ("n_mels", "n_frames", "frames_per_second", "values_f32le")
    N_MELS_FIELD_NUMBER: _ClassVar[int]
    N_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    VALUES_F32LE_FIELD_NUMBER: _ClassVar[int]
    n_mels: int
    n_frames: int
    frames_per_second: float
    values_f32le: bytes
    def __init__(self, n_mels: _Optional[int] = ..., n_frames: _Optional[int] = ..., frames_per_second: _Optional[float] = ..., values_f32le: _Optional[bytes] = ...) -> None: ...

class AudioCodes(_message.Message):
    __slots__ = ("n_frames", "dim", "fps", "values_f32le")
    N_FRAMES_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_F32LE_FIELD_NUMBER: _ClassVar[int]
    n_frames: int
    dim: int
    fps: float
    values_f32le: bytes
    def __init__(self, n_frames: _Optional[int] = ..., dim: _Optional[int] = ..., fps: _Optional[float] = ..., values_f32le: _Optional[bytes] = ...) -> None: ...

class FrameConditions(_message.Message):
    __slots__ = ("poses_f32le", "blinks_f32le", "static_pose")
    POSES_F32LE_FIELD_NUMBER: _ClassVar[int]
    BLINKS_F32LE_FIELD_NUMBER: _ClassVar[int]
    STATIC_POSE_FIELD_NUMBER: _ClassVar[int]
    poses_f32le: bytes
    blinks_f32le: bytes
    static_pose: bool
    def __init__(self, poses_f32le: _Optional[bytes] = ..., blinks_f32le: _Optional[bytes] = ..., static_pose: bool = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("first_frame", "n_frames", "width", "height", "fps", "rgb_u8")
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    N_FRAMES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    RGB_U8_FIELD_NUMBER: _ClassVar[int]
    first_frame: int
    n_frames: int
    width: int
    height: int
    fps: float
    rgb_u8: bytes
    def __init__(self, first_frame: _Optional[int] = ..., n_frames: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., rgb_u8: _Optional[bytes] = ...) -> None: ...

class VideoChunk(_message.Message):
    __slots__ = ("index", "data", "is_init_segment", "is_last", "frames_so_far", "media_seconds_so_far", "mime_type")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    IS_INIT_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    IS_LAST_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SECONDS_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    is_init_segment: bool
    is_last: bool
    frames_so_far: int
    media_seconds_so_far: float
    mime_type: str
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ..., is_init_segment: bool = ..., is_last: bool = ..., frames_so_far: _Optional[int] = ..., media_seconds_so_far: _Optional[float] = ..., mime_type: _Optional[str] = ...) -> None: ...

class SubjectInfo(_message.Message):
    __slots__ = ("id", "format_version", "width", "height", "fps", "sha256", "languages", "summary")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    id: str
    format_version: int
    width: int
    height: int
    fps: float
    sha256: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    summary: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., format_version: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., sha256: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., summary: _Optional[_Mapping[str, str]] = ...) -> None: ...
