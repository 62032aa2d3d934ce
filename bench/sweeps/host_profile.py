import cProfile, pstats, io, torch, kspec, time
x = torch.randn(64, 64, device="cuda")
k = kspec.load("specs/relu.kspec").relu; fn = k.build("triton")
for _ in range(100): fn(x)
torch.cuda.synchronize()
pr = cProfile.Profile(); pr.enable()
for _ in range(2000): fn(x)
pr.disable(); torch.cuda.synchronize()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18); print(s.getvalue()[:5000])
# bare triton launch of the same jit function, for comparison
mod = __import__("sys").modules[[m for m in __import__("sys").modules if m.startswith("kspec_gen_")][0]]
jit = [getattr(mod, n) for n in dir(mod) if n.endswith("_pointwise")][0]
y = torch.empty_like(x)
def bare(): jit[(4,)](x, x.stride(0), x.stride(1), y, y.stride(0), y.stride(1), 64, 64, BLOCK_P=2, BLOCK_I=64, num_warps=4)
for _ in range(100): bare()
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(2000): bare()
torch.cuda.synchronize(); print("bare triton launch us", (time.perf_counter() - t) / 2000 * 1e6)
