"""Building blocks of the compiled pixel model (`dvs_numba`): MKL's log as torch.log calls it, and
LLVM float32 and vector operations that numba does not offer as single instructions."""
from __future__ import annotations

import ctypes
import os

import numba
import torch
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

JIT = dict(nogil=True, cache=True, error_model="numpy")  # numpy error model: x / 0 gives inf or nan, as torch
VML_MODE = 0x2 | 0x140000 | 0x100  # VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE: what ATen's vml::vlog passes


def _torch_cpu() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
    except OSError:
        return None


def _register_mkl_log(lib: ctypes.CDLL | None) -> bool:
    """Make MKL's Fortran `vmsln` (in torch's libtorch_cpu, which torch.log calls for float32 on
    the CPU) callable from compiled code. False when this torch has none (no MKL)."""
    try:
        binding.add_symbol("VMSLN_", ctypes.cast(lib.VMSLN_, ctypes.c_void_p).value)
    except AttributeError:  # also lib None
        return False
    return True


_TORCH_CPU = _torch_cpu()
HAS_MKL_LOG = _register_mkl_log(_TORCH_CPU)


def sequential_mkl() -> None:
    """MKL runs on the calling thread only, from now on (a worker thread's own setting).

    The compiled steps call MKL's log from several threads at once, each on a few hundred values.
    At torch's thread count every such call starts an OpenMP team of its own, and on 2 cores the
    teams of two converting threads spin against each other (measured: 3x the CPU time per
    image). The setting is per thread (mkl_set_num_threads_local), so torch's calls keep theirs.
    """
    set_local = getattr(_TORCH_CPU, "MKL_Set_Num_Threads_Local", None)
    if set_local is not None:
        set_local.argtypes, set_local.restype = [ctypes.c_int], ctypes.c_int
        set_local(1)


@intrinsic
def _vmsln(typingctx, n, values, mode):
    """MKL vmsLn(n[0], values, values, mode[0]) in place, through its Fortran entry (arguments by reference)."""
    sig = types.void(n, values, mode)

    def codegen(context, builder, signature, args):
        n_ptr, v_ptr, m_ptr = (context.make_array(t)(context, builder, a).data for t, a in zip(signature.args, args))
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(32).as_pointer(), ir.FloatType().as_pointer(),
                                               ir.FloatType().as_pointer(), ir.IntType(64).as_pointer()])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, "VMSLN_"), [n_ptr, v_ptr, v_ptr, m_ptr])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(**JIT)
def log_f32(values, count, scratch):
    """values[:count] = log(values[:count]) in place, exactly as torch.log (MKL, VML_HA).
    scratch: int32 [1] and int64 [1] arrays for the by-reference arguments (n, mode)."""
    n, mode = scratch
    n[0] = count
    mode[0] = VML_MODE
    _vmsln(n, values, mode)


@intrinsic
def fma_f32(typingctx, a, b, c):
    """a * b + c rounded once (float32), as torch's vectorised lerp computes it."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        flt = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [flt], ir.FunctionType(flt, [flt, flt, flt]))
        return builder.call(fn, args)

    return sig, codegen


def _unary_f32(name: str):
    """An LLVM float32 intrinsic (floor, ceil, rint, exp) as a numba function: one instruction or
    libm call, where np.floor & co. on a scalar go through the ufunc machinery."""

    @intrinsic
    def op(typingctx, x):
        sig = types.float32(types.float32)

        def codegen(context, builder, signature, args):
            flt = ir.FloatType()
            return builder.call(builder.module.declare_intrinsic(f"llvm.{name}", [flt], ir.FunctionType(flt, [flt])), args)

        return sig, codegen

    return op


floor_f32, ceil_f32, rint_f32, exp_f32 = (_unary_f32(name) for name in ("floor", "ceil", "rint", "exp"))


LANES = 16  # pixels tested at once by `outside_lanes` (dvs_numba pads its per-pixel arrays to a multiple of it)


@intrinsic
def outside_lanes(typingctx, lo, hi, values, start):
    """Bit i set when not lo[j] < values[j] < hi[j] (also NaN), j = start + i, for i < LANES: one vector
    compare (no bounds check: start + LANES <= the arrays' length)."""
    sig = types.uint64(lo, hi, values, start)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.FloatType(), LANES)

        def load(array_type, array):
            ptr = builder.gep(context.make_array(array_type)(context, builder, array).data, [args[3]])
            return builder.load(builder.bitcast(ptr, vec.as_pointer()), align=4)

        low, high, v = (load(t, a) for t, a in zip(signature.args[:3], args[:3]))
        outside = builder.or_(builder.fcmp_unordered(">=", low, v), builder.fcmp_unordered(">=", v, high))
        return builder.zext(builder.bitcast(outside, ir.IntType(LANES)), ir.IntType(64))

    return sig, codegen
