"""Event-camera emulation: the pixel model's behaviour on images whose answer is known."""
import numpy as np
import pytest
import tonic
import torch

from snnexp.encoding.dvs import to_frames
from snnexp.encoding.emulation import Flicker, Rotation, Saccade, luminance
from snnexp.errors import ConfigError

EMULATORS = [Saccade, Flicker, Rotation]


def square(n=1, size=28, lo=6, hi=22):
    x = torch.zeros(n, 1, size, size)
    x[:, :, lo:hi, lo:hi] = 1.0
    return x


def ring(size=28):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2).sqrt()
    return ((r > 6) & (r < 9)).float().view(1, 1, size, size)  # a stroke like a handwritten "0"


@pytest.mark.parametrize("cls", EMULATORS)
def test_blank_image_gives_no_events(cls):
    ev = cls(T=4).events(torch.zeros(3, 1, 28, 28))
    assert len(ev.t) == 0
    assert cls(T=4, noise_hz=50.0).events(torch.zeros(3, 1, 28, 28)).counts().sum() > 0  # noise is optional


def test_bright_square_gives_events_only_near_its_edges():
    enc = Saccade(T=4, threshold_sigma=0.0)
    ev = enc.events(square())
    assert len(ev.t) > 0
    # the square covers sensor pixels 9..24; the camera moves at most 3.5 px from the centre
    edge_distance = torch.minimum((ev.x - 8.5).abs(), (ev.x - 24.5).abs())
    edge_distance = torch.where((ev.y > 4) & (ev.y < 29), edge_distance, torch.zeros_like(edge_distance))
    dist_y = torch.minimum((ev.y - 8.5).abs(), (ev.y - 24.5).abs())
    near = (edge_distance <= 5) | (dist_y <= 5)
    assert near.all()
    centre = (ev.x >= 15) & (ev.x <= 18) & (ev.y >= 15) & (ev.y <= 18)
    assert not centre.any()


def test_one_triangle_returns_to_start_so_on_and_off_balance():
    x = torch.rand(8, 1, 28, 28) * (torch.rand(8, 1, 28, 28) > 0.5)
    ev = Saccade(T=4).events(x)
    on, off = int(ev.p.sum()), int((1 - ev.p).sum())
    assert abs(on - off) / (on + off) < 0.05, (on, off)


@pytest.mark.parametrize("cls", EMULATORS)
def test_timestamps_span_the_configured_duration(cls):
    enc = cls(T=4)
    ev = enc.events(ring())
    assert ev.t.min() >= 0 and ev.t.max() <= enc.duration
    assert ev.t.max() - ev.t.min() > 0.5 * enc.duration  # flicker: the first OFF event waits for C of dimming


def test_events_per_image_of_n_mnist_order():
    """N-MNIST samples hold ~4,000-5,000 events; a sharp digit-like stroke gives the same order (x4 at most)."""
    n = len(Saccade(T=4).events(ring()).t)
    assert 1_000 < n < 20_000, n


def test_batch_is_the_images_one_by_one():
    x = torch.rand(3, 1, 12, 12)
    enc = Saccade(T=4)
    together = enc.events(x).to_tonic()
    for i in range(3):
        alone = enc.events(x[i:i + 1]).to_tonic()[0]
        assert np.array_equal(np.sort(alone, order=["t", "x", "y"]), np.sort(together[i], order=["t", "x", "y"]))


def test_frames_equal_tonic_to_frame():
    enc = Saccade(T=5)
    ev = enc.events(torch.cat([ring(), square()]))
    frames = to_frames(ev, 5)
    sensor = (34, 34, 2)
    for i, events in enumerate(ev.to_tonic()):
        assert np.all(np.diff(events["t"]) >= 0)
        expected = tonic.transforms.ToFrame(sensor_size=sensor, n_time_bins=5)(events)
        assert np.array_equal(frames[i].numpy(), expected)
    assert enc(square()).shape == (5, 1, 2, 34, 34)  # __call__: time-first float frames


def test_refractory_period_limits_the_rate():
    x = square()
    free = Saccade(T=4, refractory_us=0.0).events(x)
    slow = Saccade(T=4, refractory_us=20_000.0).events(x)
    assert len(slow.t) < len(free.t)
    for events in slow.to_tonic():
        pix = events["y"] * 34 + events["x"]
        for q in np.unique(pix):
            assert np.all(np.diff(events["t"][pix == q]) >= 20_000 - 1)


def test_flicker_is_off_then_on_and_rgb_becomes_luminance():
    ev = Flicker(T=4).events(square())
    half = Flicker(T=4).duration / 2
    assert (ev.p[ev.t < half] == 0).all() and (ev.p[ev.t > half] == 1).all()
    rgb = torch.rand(2, 3, 8, 8)
    assert torch.allclose(luminance(rgb), 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    assert Rotation(T=4).events(rgb).n == 2


def test_convert_matches_call_and_bad_values_name_their_key():
    x = torch.cat([ring(), square()])
    enc = Saccade(T=4)
    assert np.array_equal(enc.convert(x.numpy()), enc(x).transpose(0, 1).numpy().astype(np.uint8))
    with pytest.raises(ConfigError, match="encoding.threshold"):
        Saccade(T=4, threshold=0)
    assert "threshold=0.3" in repr(Saccade(T=4, threshold=0.3))  # the cache key holds every parameter


def test_datamodule_takes_the_emulator_and_its_shape():
    from snnexp.data.digits import DigitsData
    from snnexp.encoding.frames import TimeFirst

    dm = DigitsData()
    step = dm.use_encoder(Saccade(T=3))
    assert dm.in_shape == (2, 14, 14) and DigitsData.in_shape == (1, 8, 8)  # 8x8 + a 3-pixel margin; class untouched
    assert isinstance(step, TimeFirst) and step(torch.zeros(5, 3, 2, 14, 14)).shape == (3, 5, 2, 14, 14)
    with pytest.raises(ConfigError, match="dataset.normalize"):
        DigitsData(normalize=True).use_encoder(Saccade(T=3))


def test_without_the_compiled_path_the_torch_reference_converts(monkeypatch):
    """A machine without numba (or without MKL in torch) converts with the torch reference."""
    from snnexp.encoding import dvs_cpu

    x = torch.cat([ring(), square()]).numpy()
    enc = Flicker(T=4)
    compiled = enc.convert(x)
    monkeypatch.setattr(dvs_cpu, "available", lambda: False)
    monkeypatch.setattr(dvs_cpu, "Converter", lambda *a, **k: pytest.fail("the compiled path ran"))
    monkeypatch.setattr(dvs_cpu, "cpu_events", lambda *a, **k: pytest.fail("the compiled path ran"))
    assert np.array_equal(enc.convert(x), compiled)
