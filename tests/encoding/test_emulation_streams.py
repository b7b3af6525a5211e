"""The emulations emit exactly the events recorded before their fast rewrite (tests/encoding/emulation_streams.py)."""
import numpy as np
import pytest
import torch

from tests.encoding.emulation_streams import EXACT, FIXTURE, streams


@pytest.fixture(scope="module")
def recorded():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def computed(recorded):
    inputs = {k.split("/", 1)[1]: v for k, v in recorded.items() if k.startswith("input/")}
    return streams(inputs)


def test_fixture_holds_every_case(recorded, computed):
    assert set(computed) == {k for k in recorded if not k.startswith("input/")}


@pytest.mark.parametrize("name", ["saccade", "flicker", "rotation", "saccade_fine_no_refractory",
                                  "saccade_fine_refractory", "saccade_long_refractory", "saccade_noise",
                                  "saccade_wide", "flicker_fine", "rotation_rgb"])
def test_same_events_as_recorded(name, recorded, computed):
    assert computed[f"{name}/counts"].tolist() == recorded[f"{name}/counts"].tolist()  # the first thing to differ
    if name in EXACT:
        assert np.array_equal(computed[f"{name}/digit0"], recorded[f"{name}/digit0"])
    assert str(computed[f"{name}/sha256"]) == str(recorded[f"{name}/sha256"])


@pytest.mark.parametrize("name", ["convert_saccade", "convert_flicker", "convert_rotation"])
def test_same_converted_frames_as_recorded(name, recorded, computed):
    assert computed[f"{name}/sum"].tolist() == recorded[f"{name}/sum"].tolist()
    assert str(computed[f"{name}/sha256"]) == str(recorded[f"{name}/sha256"])


def test_a_changed_event_changes_the_digest(recorded):
    """The digest sees one timestamp moved by 1 µs (so the tests above can fail)."""
    from snnexp.encoding.dvs import EventBatch
    from tests.encoding.emulation_streams import canonical, digest

    rows = torch.from_numpy(recorded["saccade/digit0"])
    ev = EventBatch(sample=rows[:, 0], t=rows[:, 1].clone(), y=rows[:, 2], x=rows[:, 3], p=rows[:, 4], n=5, width=14,
                    height=14)
    before = digest(canonical(ev))
    ev.t[7] += 1
    assert digest(canonical(ev)) != before
