"""The compiled CPU pixel model (encoding/dvs_cpu.py) gives the torch reference's events, field by field."""
import numpy as np
import pytest
import torch

from snnexp.encoding import dvs_cpu
from snnexp.encoding.emulation import Flicker, Rotation, Saccade
from snnexp.errors import ConfigError
from tests.encoding.emulation_streams import CASES, FIXTURE, batch

pytestmark = pytest.mark.skipif(not dvs_cpu.available(), reason="the compiled path needs numba and torch with MKL")
FIELDS = ("sample", "x", "y", "t", "p")


def same_events(a, b) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in FIELDS) and (a.n, a.height, a.width) == (
        b.n, b.height, b.width)


@pytest.fixture(scope="module")
def inputs():
    recorded = np.load(FIXTURE)
    return {k.split("/", 1)[1]: recorded[k] for k in recorded.files if k.startswith("input/")}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_reference_on_the_recorded_inputs(name, inputs):
    make, kind = CASES[name]
    x = batch(inputs, kind)
    enc = make()
    assert same_events(enc.events(x), enc.events(x, kernel=False))


@pytest.mark.parametrize("enc", [
    Saccade(T=4, threshold=0.05, eps=1e-30),  # log intensities far from 0 (|L| ~ 69): guard off, every step exact
    Saccade(T=4, threshold=3.0, refractory_us=1e5, eps=1e-25),  # few, long-refractory events
    Flicker(T=4, threshold=2e-3, refractory_us=0.0),  # a threshold below the guard's margin: every step exact
    Rotation(T=4, threshold_sigma=0.3),  # strong per-pixel mismatch
])
def test_compiled_equals_reference_on_extreme_settings(enc):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 10, 10, generator=g) * 3  # intensities above 1 too
    x[1] = 0
    x[2, 0, :5] = 0
    assert same_events(enc.events(x), enc.events(x, kernel=False))


def test_convert_same_frames_compiled_reference_and_threads():
    x = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(0)).numpy()
    enc = Saccade(T=5, noise_hz=30.0)  # noise merged into the compiled framing
    reference = enc.convert(x, kernel=False)
    threads = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)  # the compiled path splits the images over this many threads
            assert np.array_equal(enc.convert(x), reference)
    finally:
        torch.set_num_threads(threads)
    assert reference.sum() > 0


def test_lit_pixels_cover_every_pixel_that_emits():
    """Pixels the span skips (dark at every offset) never emit in the reference either."""
    x = torch.zeros(2, 1, 20, 20)
    x[0, 0, 8:11, 9:12] = 1.0  # a small blob: most of the sensor stays black
    enc = Saccade(T=4)
    scene, times, _ = enc._setup(x)
    render = enc.cpu_render(scene, times)
    lit = render.lit(*scene.shape[1:])
    ev = enc.events(x, kernel=False)
    assert lit[ev.sample, ev.y, ev.x].all() and lit.sum() < 0.5 * lit.size and not lit[1].any()


def test_bad_images_are_refused_before_work():
    with pytest.raises(ConfigError, match="finite intensities"):
        Saccade(T=4).events(torch.full((1, 1, 8, 8), -0.5))
    with pytest.raises(ConfigError, match="finite intensities"):
        Flicker(T=4).convert(np.full((1, 1, 8, 8), np.nan, np.float32))


def test_converting_threads_run_mkl_on_their_own_and_torch_threads_come_back():
    """Each converting thread calls MKL with one thread (two threads' OpenMP teams spun against each
    other, 3x the CPU time); the caller's torch thread count is restored, also after an error."""
    from concurrent.futures import ThreadPoolExecutor

    from snnexp.encoding import numba_ops

    max_threads = numba_ops._TORCH_CPU.MKL_Get_Max_Threads
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with ThreadPoolExecutor(1, initializer=numba_ops.sequential_mkl) as pool:
            assert pool.submit(max_threads).result() == 1
        assert max_threads() == 2  # the calling thread keeps torch's setting
        x = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(0)).numpy()
        Saccade(T=4).convert(x)
        assert torch.get_num_threads() == 2

        def fail(a, b):
            raise ValueError(f"block {a}..{b}")

        with pytest.raises(ValueError, match="block 0..16"):
            with dvs_cpu.Converter() as converter:
                converter._chunks.append(converter._blocks(fail, 40))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
