# Gate candidate (wrong): drops the last column of rows wider than 64 that are not a multiple of 16
# Derived from kspec's generated Triton; see tests/test_gate_candidates.py.
import torch
import triton
import triton.language as tl


def _index64(tensors, spaces):
    # True when some element offset or flattened index reaches 2^31: the kernel then does its
    # index arithmetic in 64 bits (INDEX64), else in Triton's 32-bit default
    limit = 2 ** 31
    return any(n >= limit for n in spaces) or any(
        sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride())) >= limit
        for t in tensors if t.numel())


@triton.jit
def _kahan_add(acc, lost, x):
    # acc + x with the rounding error carried in `lost` (Kahan): a long f32 chain stays within
    # a few ulp of its sum; `lost` is held at 0 once the sum is inf or NaN, which then stays so
    step = x - lost
    total = acc + step
    return total, tl.where(total - total == 0, (total - acc) - step, 0.0)


# Reduction combiners (the interpreter cannot call triton.language's own @jit functions).
@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def softmax_0_rows(x_ptr, x_s0, x_s1, y_ptr, y_s0, y_s1, M, N, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr, SINGLE: tl.constexpr, INDEX64: tl.constexpr):
    # rows -> m, y_r0, y
    pid = tl.program_id(0)
    if INDEX64:  # an offset can reach 2^31: index arithmetic in 64 bits
        pid = pid.to(tl.int64)
        x_s0 = tl.cast(x_s0, tl.int64)
        x_s1 = tl.cast(x_s1, tl.int64)
        y_s0 = tl.cast(y_s0, tl.int64)
        y_s1 = tl.cast(y_s1, tl.int64)
        M = tl.cast(M, tl.int64)
        N = tl.cast(N, tl.int64)
    offs_p = pid * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]
    pmask = offs_p < (M)
    if SINGLE:
        offs_r = tl.arange(0, BLOCK_R)[None, :]
        rmask = offs_r < N - (N % 16 != 0) * (N > 64)  # no .to(): N may be a constexpr
        x_2 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0)
        red1 = tl.reduce(tl.where(pmask & rmask, x_2, float('-inf')), 1, _max, keep_dims=True)
        m_row = red1
        red3 = tl.reduce(tl.where(pmask & rmask, tl.exp((x_2 - m_row)), 0.0), 1, _add, keep_dims=True)
        y_r0_row = red3
        tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, ((tl.exp((x_2 - m_row)) / y_r0_row)).to(tl.float32), mask=pmask & rmask)
    else:
        red4 = tl.full([BLOCK_P, BLOCK_R], float('-inf'), tl.float32)
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_5 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0)
            red4 = _max(red4, tl.where(pmask & rmask, x_5, float('-inf')))
        red4 = tl.reduce(red4, 1, _max, keep_dims=True)
        m_row = red4
        red6 = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        red6_lost = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_7 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0)
            red6, red6_lost = _kahan_add(red6, red6_lost, tl.where(pmask & rmask, tl.exp((x_7 - m_row)), 0.0))
        red6 = tl.reduce(red6 - red6_lost, 1, _add, keep_dims=True)
        y_r0_row = red6
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_8 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0)
            tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, ((tl.exp((x_8 - m_row)) / y_r0_row)).to(tl.float32), mask=pmask & rmask)


def launch(x, M, N, schedule=None):
    schedule = schedule or {}
    device = x.device
    y = torch.empty(((M), (N)), dtype=torch.float32, device=device)
    # launch 0: rows -> m, y_r0, y
    BLOCK_R = schedule.get('0.BLOCK_R', min(triton.next_power_of_2((N)), 8192))
    BLOCK_P = schedule.get('0.BLOCK_P', min(triton.next_power_of_2((M)), max(1, 2048 // BLOCK_R)))
    WARPS = schedule.get('0.WARPS', 4 if BLOCK_R * BLOCK_P <= 2048 else (8 if BLOCK_R * BLOCK_P * 4 < 16384 else 16))
    INDEX64 = schedule.get('0.INDEX64', _index64((x, y), ((M), (N))))
    softmax_0_rows[(triton.cdiv((M), BLOCK_P),)](x, x.stride(0), x.stride(1), y, y.stride(0), y.stride(1), M, N, BLOCK_P=BLOCK_P, BLOCK_R=BLOCK_R, SINGLE=(N) <= BLOCK_R, INDEX64=INDEX64, num_warps=WARPS)
    return y
