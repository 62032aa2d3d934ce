import time, torch, triton, kspec, torch.nn.functional as F
from triton.testing import do_bench
print(torch.cuda.get_device_name())
def host_us(fn, n=2000):
    for _ in range(50): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6
xs = torch.randn(64, 64, device="cuda")
for spec, name, eager in [("relu", "relu", lambda x: torch.relu(x)), ("softmax", "softmax", lambda x: torch.softmax(x, 1)), ("layernorm", "layernorm", None)]:
    k = kspec.load(f"specs/{spec}.kspec")[name]
    fn = k.build("triton")
    if name == "layernorm":
        xb = xs.bfloat16(); w = torch.randn(64, device="cuda").bfloat16(); b = w.clone()
        print(f"{name}: kspec {host_us(lambda: fn(xb, w, b)):.1f} us/call  eager {host_us(lambda: F.layer_norm(xb, (64,), w, b)):.1f}")
    else:
        print(f"{name}: kspec {host_us(lambda: fn(xs)):.1f} us/call  eager {host_us(lambda: eager(xs)):.1f}")
# pointwise/rows schedule sweep at full size, per-call timing like bench (no L2 flush between calls)
M, N = 16384, 4096
xsets = [torch.randn(M, N, device="cuda") for _ in range(3)]
def percall(fn, reps=200):
    for i in range(20): fn(xsets[i % 3])
    st = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]; en = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda.synchronize()
    for i in range(reps):
        st[i].record(); fn(xsets[i % 3]); en[i].record()
    torch.cuda.synchronize()
    ts = sorted(s.elapsed_time(e) for s, e in zip(st, en)); return ts[len(ts) // 2]
bw = 4224e3
for spec in ["relu", "gelu", "softmax", "log_softmax", "row_sum"]:
    k = kspec.load(f"specs/{spec}.kspec")[spec]
    nbytes = M * N * 4 * (1 if spec == "row_sum" else 2)
    e = {"relu": torch.relu, "gelu": F.gelu, "softmax": lambda x: torch.softmax(x, 1), "log_softmax": lambda x: torch.log_softmax(x, 1), "row_sum": lambda x: x.sum(1)}[spec]
    c = torch.compile(e)
    print(f"{spec}: eager {percall(e):.4f} compile {percall(c):.4f}")
    if spec in ("relu", "gelu"):
        configs = [dict(BLOCK_P=bp, BLOCK_I=bi, WARPS=w) for bp, bi, w in [(2, 1024, 4), (4, 1024, 4), (4, 1024, 8), (8, 1024, 8), (1, 4096, 8), (2, 4096, 16), (1, 2048, 4), (1, 1024, 4)]]
    else:
        configs = [dict(BLOCK_P=bp, BLOCK_R=br, WARPS=w) for bp, br, w in [(1, 4096, 8), (1, 4096, 16), (1, 4096, 4), (2, 4096, 8), (2, 4096, 16), (4, 4096, 16)]]
    for cfg in configs:
        fn = k.build("triton", schedule={f"0.{a}": b for a, b in cfg.items()})
        t = percall(fn)
        print(f"   {cfg}: {t:.4f} ms  {nbytes / t / 1e6 / 4224:.2f} of copy")
