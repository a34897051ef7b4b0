import time, io, tempfile, statistics, torch
import condgan
from condgan import Trainer, TrainerConfig, checkpoint as ckpt, checkpoint_checks as checks
from condgan.data import synthetic
torch.set_num_threads(1)
d = tempfile.mkdtemp()
cfg = condgan.get_component("preset", "mnist_mlp").config()
t = Trainer(cfg, TrainerConfig(device="cpu", loggers=(), out_dir=d, steps=1), data=synthetic(image_shape=(1, 32, 32), num_classes=10, per_class=20))
t.train()
state = t.state_dict()
path = ckpt.latest_checkpoint(d)
print("file MB", path.stat().st_size / 1e6)
def tm(f, n=7):
    xs = []
    for _ in range(n):
        a = time.perf_counter(); f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1e3
plain = lambda: ckpt.atomic_write(f"{d}/x.pt", lambda f: torch.save(state, f))
print("save without checksum ms", tm(plain))
print("save with checksum ms", tm(lambda: ckpt.save_file(state, f"{d}/y.pt")))
print("hash alone ms", tm(lambda: checks.content_sha256(state)))
print("torch.load ms", tm(lambda: torch.load(f"{d}/y.pt", map_location="cpu", weights_only=True)))
print("read_file (load+verify) ms", tm(lambda: ckpt.read_file(f"{d}/y.pt")))
