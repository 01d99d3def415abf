"""The committed gRPC stubs must be what `make protos` generates from protos/."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_are_fresh(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    committed = ROOT / "services" / "protos"
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    assert fresh, "generator produced nothing"
    for rel in fresh:
        assert (committed / rel).exists(), f"{rel} is missing: run `make protos`"
        assert (committed / rel).read_text() == (tmp_path / rel).read_text(), f"{rel} is stale: run `make protos`"


def test_stubs_import_and_round_trip():
    from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc, common_pb2, stages_pb2_grpc

    req = avatar_pb2.SpeakRequest(text="hello", subject="demo", lang="en")
    assert avatar_pb2.SpeakRequest.FromString(req.SerializeToString()).text == "hello"
    assert not req.HasField("denoise")
    chunk = common_pb2.VideoChunk(index=0, data=b"x", is_init_segment=True)
    assert chunk.is_init_segment
    for name in ("AvatarServicer", "AvatarStub"):
        assert hasattr(avatar_pb2_grpc, name)
    for name in ("TtsServicer", "DenoiseServicer", "EncoderServicer", "RendererServicer"):
        assert hasattr(stages_pb2_grpc, name)
