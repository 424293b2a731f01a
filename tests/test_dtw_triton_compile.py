"""The fused triton kernels compile for a GPU (PTX and an sm_90 cubin) on a CPU-only machine: what the
interpreter never checks (constexpr globals, loop-carried types, unsupported constructs) fails here,
not on a lent GPU's clock. A subprocess, so that TRITON_INTERPRET (tests/test_dtw_triton.py sets it) is off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMPILE = """
import itertools
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from tempclr_cli.core.align import _dtw_triton as T

assert not T.interpreted()
scalars = {"s_b": "i64", "s_n": "i64", "s_m": "i64", "lengths": "*i64", "params": "*fp64", "band": "i32",
           "table": "*fp64", "t_b": "i64", "width": "i32", "values": "*fp64"}
kernels = [(T._forward, {"cost": "*fp32", **scalars}, dict(SOFT=soft, SUBSEQ=subseq, OTAM=otam, RING=ring, BLOCK=1024))
           for soft, subseq, otam, ring in itertools.product((True, False), repeat=4)]
kernels += [(T._backward, {"cost": "*bf16", **scalars, "scale": "*fp64", "ring": "*fp64", "grad": "*bf16", "g_b": "i64",
                           "g_n": "i64", "g_m": "i64"}, dict(SUBSEQ=subseq, OTAM=otam, BLOCK=1024))
            for subseq, otam in itertools.product((True, False), repeat=2)]
kernels += [(T._backtrack, {"table": "*fp64", "t_b": "i64", "lengths": "*i64", "band": "i32", "steps": "*i64",
                            "st_b": "i64", "path_len": "*i64", "values": "*fp64"}, dict(SUBSEQ=subseq, BLOCK=64))
            for subseq in (True, False)]
for fn, signature, constexprs in kernels:
    signature.update({name: "constexpr" for name in constexprs})
    compiled = triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": 8, "num_stages": 1})
    assert compiled.asm["cubin"], fn
print("compiled", len(kernels))
"""


@pytest.mark.slow
def test_the_triton_kernels_compile_for_a_gpu():
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", COMPILE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled 22" in done.stdout
