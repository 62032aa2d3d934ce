# Gate candidate (wrong): layernorm with the one-pass variance E[x^2] - E[x]^2
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
def layernorm_0_rows(x_ptr, x_s0, x_s1, mu_ptr, mu_s0, rstd_ptr, rstd_s0, w_ptr, w_s0, b_ptr, b_s0, y_ptr, y_s0, y_s1, eps, M, N, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr, SINGLE: tl.constexpr, INDEX64: tl.constexpr):
    # rows -> mu, rstd, y
    pid = tl.program_id(0)
    if INDEX64:  # an offset can reach 2^31: index arithmetic in 64 bits
        pid = pid.to(tl.int64)
        x_s0 = tl.cast(x_s0, tl.int64)
        x_s1 = tl.cast(x_s1, tl.int64)
        mu_s0 = tl.cast(mu_s0, tl.int64)
        rstd_s0 = tl.cast(rstd_s0, tl.int64)
        w_s0 = tl.cast(w_s0, tl.int64)
        b_s0 = tl.cast(b_s0, tl.int64)
        y_s0 = tl.cast(y_s0, tl.int64)
        y_s1 = tl.cast(y_s1, tl.int64)
        M = tl.cast(M, tl.int64)
        N = tl.cast(N, tl.int64)
    offs_p = pid * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]
    pmask = offs_p < (M)
    if SINGLE:
        offs_r = tl.arange(0, BLOCK_R)[None, :]
        rmask = offs_r < (N)
        x_2 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0).to(tl.float32)
        red1 = tl.reduce(tl.where(pmask & rmask, x_2, 0.0), 1, _add, keep_dims=True)
        red1 = red1 / (N)
        mu_row = red1
        tl.store(mu_ptr + (offs_p) * mu_s0, (mu_row).to(tl.float32), mask=pmask)
        t4 = (x_2 - mu_row)
        red3 = tl.reduce(tl.where(pmask & rmask, x_2 * x_2, 0.0), 1, _add, keep_dims=True)
        red3 = red3 / (N) - mu_row * mu_row
        rstd_row = tl.rsqrt((red3 + eps))
        tl.store(rstd_ptr + (offs_p) * rstd_s0, (rstd_row).to(tl.float32), mask=pmask)
        w_5 = tl.load(w_ptr + (offs_r) * w_s0, mask=pmask & rmask, other=0.0).to(tl.float32)
        b_6 = tl.load(b_ptr + (offs_r) * b_s0, mask=pmask & rmask, other=0.0).to(tl.float32)
        tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, (((((x_2 - mu_row) * rstd_row) * w_5) + b_6)).to(tl.bfloat16), mask=pmask & rmask)
    else:
        red7 = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        red7_lost = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_8 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0).to(tl.float32)
            red7, red7_lost = _kahan_add(red7, red7_lost, tl.where(pmask & rmask, x_8, 0.0))
        red7 = tl.reduce(red7 - red7_lost, 1, _add, keep_dims=True)
        red7 = red7 / (N)
        mu_row = red7
        tl.store(mu_ptr + (offs_p) * mu_s0, (mu_row).to(tl.float32), mask=pmask)
        red9 = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        red9_lost = tl.full([BLOCK_P, BLOCK_R], 0.0, tl.float32)
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_10 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0).to(tl.float32)
            t11 = (x_10 - mu_row)
            red9, red9_lost = _kahan_add(red9, red9_lost, tl.where(pmask & rmask, x_10 * x_10, 0.0))
        red9 = tl.reduce(red9 - red9_lost, 1, _add, keep_dims=True)
        red9 = red9 / (N) - mu_row * mu_row
        rstd_row = tl.rsqrt((red9 + eps))
        tl.store(rstd_ptr + (offs_p) * rstd_s0, (rstd_row).to(tl.float32), mask=pmask)
        for r0 in range(0, (N), BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]
            rmask = offs_r < (N)
            x_12 = tl.load(x_ptr + (offs_p) * x_s0 + (offs_r) * x_s1, mask=pmask & rmask, other=0.0).to(tl.float32)
            w_13 = tl.load(w_ptr + (offs_r) * w_s0, mask=pmask & rmask, other=0.0).to(tl.float32)
            b_14 = tl.load(b_ptr + (offs_r) * b_s0, mask=pmask & rmask, other=0.0).to(tl.float32)
            tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, (((((x_12 - mu_row) * rstd_row) * w_13) + b_14)).to(tl.bfloat16), mask=pmask & rmask)


def launch(x, w, b, eps, M, N, schedule=None):
    schedule = schedule or {}
    device = x.device
    y = torch.empty(((M), (N)), dtype=torch.bfloat16, device=device)
    mu = torch.empty(((M),), dtype=torch.float32, device=device)
    rstd = torch.empty(((M),), dtype=torch.float32, device=device)
    # launch 0: rows -> mu, rstd, y
    BLOCK_R = schedule.get('0.BLOCK_R', min(triton.next_power_of_2((N)), 8192))
    BLOCK_P = schedule.get('0.BLOCK_P', min(triton.next_power_of_2((M)), max(1, 2048 // BLOCK_R)))
    WARPS = schedule.get('0.WARPS', 4 if BLOCK_R * BLOCK_P <= 2048 else (8 if BLOCK_R * BLOCK_P * 2 < 16384 else 16))
    INDEX64 = schedule.get('0.INDEX64', _index64((x, mu, rstd, w, b, y), ((M), (N))))
    layernorm_0_rows[(triton.cdiv((M), BLOCK_P),)](x, x.stride(0), x.stride(1), mu, mu.stride(0), rstd, rstd.stride(0), w, w.stride(0), b, b.stride(0), y, y.stride(0), y.stride(1), eps, M, N, BLOCK_P=BLOCK_P, BLOCK_R=BLOCK_R, SINGLE=(N) <= BLOCK_R, INDEX64=INDEX64, num_warps=WARPS)
    return (y, mu, rstd)
