"""Subject ids: the whole string must match (no trailing newline slips through `$`)."""

import pytest

from services.common.bundle import check_subject_id, make_bundle
from services.common.errors import InvalidInput


@pytest.mark.parametrize("good", ["demo", "a", "tiny-a", "x_1", "0" * 64])
def test_good_subject_ids(good):
    assert check_subject_id(good) == good


@pytest.mark.parametrize("bad", ["demo\n", "demo\r\n", "\ndemo", "Demo", "-demo", "", "a" * 65, "de mo", "../etc",
                                 "demo\x00", 3, None, ["demo"]])
def test_bad_subject_ids(bad):
    with pytest.raises(InvalidInput, match="subject id"):
        check_subject_id(bad)


def test_blob_names_match_whole():
    blobs = {"model.safetensors": b"m", "background.png": b"b", "tracks.safetensors": b"t"}
    with pytest.raises(InvalidInput, match="blob name"):
        make_bundle("demo", {**blobs, "extra.json\n": b"x"})
