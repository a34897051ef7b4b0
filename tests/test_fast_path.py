"""The fast training step (condgan.training.step.FastStep) and the step-throughput benchmark (benchmarks/throughput.py).

The fast step must train exactly as a plain eager step does (same parameters after a few steps from
the same seed); the benchmark's FLOP count must reproduce the reference's figure; the benchmark
script must run and write JSON with every expected key. No speed is asserted here.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import condgan
from condgan.data import load_mnist, to_float
from condgan.layers import Dropout, batch_independent, dropout_draws
from condgan.training.step import FastStep, make_step, train_step
from condgan.training.optim import fast_optimizer_options

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark code lives outside the package
from throughput import MatmulReplay, Workload, linear_flops, record_matmuls  # noqa: E402
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# mnist_mlp, narrowed so a step takes milliseconds; dropout, BatchNorm and embeddings all kept
SMALL = {
    "image_shape": (1, 12, 12),
    "latent_dim": 16,
    "generator.backbone_options.widths": (32, 48, 48, 64),
    "discriminator.backbone_options.widths": (48, 48, 48),
}


def small_gan(dtype: torch.dtype = torch.float32, **overrides) -> condgan.GAN:
    return condgan.build("mnist_mlp", overrides={**SMALL, **overrides}).to(dtype)


@pytest.fixture
def float64():
    """Float64 everywhere (noise included): rounding then cannot hide a difference in the mathematics."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(previous)


def plain_eager_step(gan, real, y_real, opt_g, opt_d, *, generator=None, clip=None):
    """The straightforward step: standard Adam, no freezing of D, loss.backward() on both losses."""
    G, D = gan.generator, gan.discriminator
    z = torch.randn(real.shape[0], G.latent_dim, generator=generator, dtype=real.dtype)
    y_fake = torch.randint(0, gan.config.num_classes, (real.shape[0],), generator=generator)
    opt_g.zero_grad()
    fake = G(z, y_fake)
    g_loss = torch.nn.functional.mse_loss(D(fake, y_fake), torch.ones(real.shape[0], 1, dtype=real.dtype))
    g_loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(G.parameters(), clip)
    opt_g.step()
    opt_d.zero_grad()
    real_loss = torch.nn.functional.mse_loss(D(real, y_real), torch.ones(real.shape[0], 1, dtype=real.dtype))
    fake_loss = torch.nn.functional.mse_loss(D(fake.detach(), y_fake), torch.zeros(real.shape[0], 1, dtype=real.dtype))
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(D.parameters(), clip)
    opt_d.step()
    return {"g_loss": g_loss.detach(), "d_loss": d_loss.detach()}


def batches(n_steps, batch=16, dtype=torch.float32, shape=(1, 12, 12)):
    gen = torch.Generator().manual_seed(123)
    return [(torch.rand(batch, *shape, generator=gen, dtype=dtype) * 2 - 1, torch.randint(0, 10, (batch,), generator=gen))
            for _ in range(n_steps)]


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module, *, rtol: float, atol: float) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=rtol, atol=atol, msg=lambda m: f"{key}: {m}")


def run_both(dtype, steps=4, *, clip=None, generator_seed=None, fast_options=None, draws="uniform"):
    """(plain, fast) GANs after ``steps`` steps from the same weights and the same seed.

    The plain step draws its dropout masks as ``draws`` says (the fast step's default on the CPU:
    "uniform", with D's update in one joined pass), the fast step too unless ``fast_options`` say otherwise.
    """
    plain = small_gan(dtype)
    fast = copy.deepcopy(plain)
    data = batches(steps, dtype=dtype)
    opt_plain = plain.optimizers()  # torch's default Adam
    opt_fast = fast.optimizers(**fast_optimizer_options("cpu"))
    losses = {}
    for name, gan, (opt_g, opt_d) in (("plain", plain, opt_plain), ("fast", fast, opt_fast)):
        torch.manual_seed(7)
        gen = torch.Generator().manual_seed(generator_seed) if generator_seed is not None else None
        if name == "plain":
            def one(r, y, gan=gan, opt_g=opt_g, opt_d=opt_d, gen=gen):
                with dropout_draws(draws):
                    return plain_eager_step(gan, r, y, opt_g, opt_d, generator=gen, clip=clip)
        else:
            one = FastStep(gan, opt_g, opt_d, generator=gen, clip_grad_norm=clip, **{"dropout_draws": draws, **(fast_options or {})})
        losses[name] = [one(r, y) for r, y in data]
    return plain, fast, losses


def test_fast_step_on_the_cpu_draws_uniform_masks_and_joins_the_d_passes():
    gan = small_gan()
    step = FastStep(gan, *gan.optimizers())
    assert step.dropout_draws == "uniform" and step.joined_d_pass
    for overrides in ({"discriminator.backbone_options.spectral_norm": True},  # a power iteration per pass
                      {"discriminator.backbone_options.norm": "batch"}, {"augment": "diffaugment"}):
        other = small_gan(**overrides)
        assert not batch_independent(other.discriminator), overrides
        assert not FastStep(other, *other.optimizers()).joined_d_pass
        with pytest.raises(ValueError, match="joined_d_pass=True needs a discriminator that treats samples apart"):
            FastStep(other, *other.optimizers(), joined_d_pass=True)
    with pytest.raises(ValueError, match="dropout_draws must be None or one of"):
        FastStep(gan, *gan.optimizers(), dropout_draws="philox")


def test_uniform_dropout_draws_keep_one_minus_p_and_a_pass_draws_a_row_per_sample():
    layer = Dropout(0.4).train()
    with dropout_draws("uniform"):
        out = layer(torch.ones(400, 500))
    assert out.unique().tolist() == [0.0, (torch.ones(()) / 0.6).item()]  # kept elements scaled as nn.Dropout scales
    assert abs((out > 0).float().mean().item() - 0.6) < 0.005  # 200,000 draws: 5 standard errors is 0.0055
    D = small_gan().discriminator.train()
    a, b = torch.rand(5, 1, 12, 12), torch.rand(7, 1, 12, 12)
    ya, yb = torch.randint(0, 10, (5,)), torch.randint(0, 10, (7,))
    with dropout_draws("uniform"):
        torch.manual_seed(3)
        apart = torch.cat([D(a, ya), D(b, yb)])
        torch.manual_seed(3)
        joined = D(torch.cat([a, b]), torch.cat([ya, yb]))
        torch.manual_seed(4)
        other = D(torch.cat([a, b]), torch.cat([ya, yb]))
    torch.testing.assert_close(joined, apart, rtol=1e-5, atol=1e-6)  # the same masks: only rounding differs
    assert not torch.allclose(joined, other)  # dropout is on: other draws, other scores


def test_fast_step_with_bernoulli_draws_and_two_d_passes_draws_what_the_reference_draws(float64):
    plain, fast, _ = run_both(float64, steps=3, draws="bernoulli", fast_options={"joined_d_pass": False})
    assert_same_state(plain, fast, rtol=1e-6, atol=1e-8)
    _, other, _ = run_both(float64, steps=3, draws="bernoulli")  # joined: the same distribution, other draws
    assert max((p - q).abs().max().item() for p, q in zip(plain.parameters(), other.parameters())) > 1e-6


# -- the fast step trains as the plain step does ---------------------------------------------------------
def test_fast_step_matches_plain_eager_step_float64(float64):
    plain, fast, losses = run_both(float64, steps=4)
    # condgan's losses are computed in float32 (for autocast), so agreement is to about 1e-8,
    # while a wrong gradient, draw or update moves weights by about lr = 2e-4 per step.
    assert_same_state(plain, fast, rtol=1e-6, atol=1e-8)
    for lp, lf in zip(losses["plain"], losses["fast"]):
        torch.testing.assert_close(lp["g_loss"], lf["g_loss"], rtol=1e-6, atol=0, check_dtype=False)
        torch.testing.assert_close(lp["d_loss"], lf["d_loss"], rtol=1e-6, atol=0, check_dtype=False)
    # training changed the weights (the comparison is not between two untouched models)
    untouched = small_gan(torch.float64)
    moved = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), untouched.parameters()))
    assert moved > 1e-4


def test_fast_step_matches_plain_eager_step_float32_with_generator_and_clipping():
    plain, fast, losses = run_both(torch.float32, steps=4, clip=0.5, generator_seed=3)
    # Looser than float64: the biases of Linears followed by BatchNorm get gradients that are pure
    # rounding noise (BatchNorm removes their effect), and Adam scales noise up to steps of up to
    # lr = 2e-4, which differ between the two Adam implementations. A wrong draw or a wrong gradient
    # moves most weights by about lr per step instead.
    assert_same_state(plain, fast, rtol=1e-4, atol=1e-4)
    assert losses["fast"][-1]["d_loss"].requires_grad is False


def test_fast_step_differs_when_the_dropout_draws_differ(float64):
    """The equality above depends on the draws: a different seed for the fast step breaks it."""
    plain = small_gan(float64)
    fast = copy.deepcopy(plain)
    data = batches(2, dtype=float64)
    opt_plain, opt_fast = plain.optimizers(), fast.optimizers(**fast_optimizer_options("cpu"))
    torch.manual_seed(7)
    for r, y in data:
        plain_eager_step(plain, r, y, *opt_plain)
    torch.manual_seed(8)
    step = make_step(fast, *opt_fast)
    for r, y in data:
        step(r, y)
    diff = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), fast.parameters()))
    assert diff > 1e-6


def test_train_step_and_fast_step_agree_and_keep_frozen_parameters_frozen():
    a = small_gan()
    frozen = a.discriminator.conditioner.embedding.weight
    frozen.requires_grad_(False)
    b = copy.deepcopy(a)
    data = batches(3)
    opt_a = a.optimizers(**fast_optimizer_options("cpu"))
    opt_b = b.optimizers(**fast_optimizer_options("cpu"))
    torch.manual_seed(1)
    for r, y in data:
        train_step(a, r, y, *opt_a, dropout_draws="uniform")
    torch.manual_seed(1)
    step = FastStep(b, *opt_b, joined_d_pass=False)
    for r, y in data:
        step(r, y)
    assert_same_state(a, b, rtol=0, atol=0)  # the same code and draws: bitwise equal
    for gan in (a, b):
        emb = gan.discriminator.conditioner.embedding.weight
        assert emb.requires_grad is False
        assert all(p.requires_grad for name, p in gan.discriminator.named_parameters() if "embedding" not in name)


def test_fast_step_leaves_no_gradient_on_d_from_the_generator_update():
    gan = small_gan()
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cpu"))
    (real, y), = batches(1)
    calls = record_matmuls(lambda: FastStep(gan, opt_g, opt_d, joined_d_pass=False)(real, y))
    # 5 G Linears (fwd, wgrad, igrad) + 4 D Linears in G's pass (fwd, igrad) + 2 D passes x 4 Linears x 3
    assert len(calls) == 5 * 3 + 4 * 2 + 2 * 4 * 3
    calls = record_matmuls(lambda: FastStep(gan, opt_g, opt_d)(real, y))
    assert len(calls) == 5 * 3 + 4 * 2 + 1 * 4 * 3  # D's update in one pass over the real and fake batches


def test_compiled_forward_passes_match_eager():
    """The compile path (aot_eager backend: the same kernels, no C++ build) trains as the eager path."""
    eager = small_gan()
    compiled = copy.deepcopy(eager)
    data = batches(3)
    opt_e = eager.optimizers(**fast_optimizer_options("cpu"))
    opt_c = compiled.optimizers(**fast_optimizer_options("cpu"))
    torch.manual_seed(5)
    step = FastStep(eager, *opt_e)
    for r, y in data:
        step(r, y)
    torch.manual_seed(5)
    step = FastStep(compiled, *opt_c, compile="default", compile_backend="aot_eager")
    for r, y in data:
        step(r, y)
    assert_same_state(eager, compiled, rtol=1e-4, atol=1e-5)


def test_fast_step_rejects_bad_arguments():
    gan = small_gan()
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cpu"))
    with pytest.raises(ValueError, match="cuda_graph=True needs the model on a CUDA device"):
        FastStep(gan, opt_g, opt_d, cuda_graph=True)
    with pytest.raises(ValueError, match="compile must be None or one of"):
        FastStep(gan, opt_g, opt_d, compile="fastest")
    with pytest.raises(ValueError, match="opt_g must optimize the generator's parameters"):
        FastStep(gan, opt_d, opt_g)
    with pytest.raises(ValueError, match="clip_grad_norm must be > 0"):
        FastStep(gan, opt_g, opt_d, clip_grad_norm=0.0)
    with pytest.raises(ValueError, match="autocast_dtype must be"):
        FastStep(gan, opt_g, opt_d, autocast_dtype=torch.float64)
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        FastStep(gan, opt_g, opt_d, warmup_steps=0)


def test_fast_optimizer_options():
    assert fast_optimizer_options("cpu") == {"fused": True}
    assert fast_optimizer_options("cuda") == {"fused": True, "capturable": True}
    assert fast_optimizer_options("cuda", cuda_graph=False) == {"fused": True}
    opt_g, _ = small_gan().optimizers(**fast_optimizer_options("cpu"))
    assert opt_g.param_groups[0]["fused"] is True


def test_bf16_autocast_step_runs_and_stays_close_on_cpu():
    gan = small_gan()
    reference = copy.deepcopy(gan)
    opt = gan.optimizers(**fast_optimizer_options("cpu"))
    opt_ref = reference.optimizers(**fast_optimizer_options("cpu"))
    (real, y), = batches(1)
    torch.manual_seed(2)
    losses = FastStep(gan, *opt, autocast_dtype=torch.bfloat16)(real, y)
    torch.manual_seed(2)
    ref_losses = FastStep(reference, *opt_ref)(real, y)
    assert losses["g_loss"].dtype == torch.float32
    torch.testing.assert_close(losses["g_loss"], ref_losses["g_loss"], rtol=0.05, atol=0.01)
    assert all(p.dtype == torch.float32 for p in gan.parameters())


# -- CUDA: the captured step ------------------------------------------------------------------------------
@needs_cuda
def test_cuda_graph_step_matches_eager_step():
    torch.manual_seed(0)
    eager = small_gan().cuda()
    graphed = copy.deepcopy(eager)
    data = [(r.cuda(), y.cuda()) for r, y in batches(6)]
    opt_e = eager.optimizers(**fast_optimizer_options("cuda", cuda_graph=False))
    opt_c = graphed.optimizers(**fast_optimizer_options("cuda"))

    def train(step, optimizers):
        losses = []
        for i, (r, y) in enumerate(data):
            if i == 4:  # a learning-rate schedule: the captured graph must follow it
                for opt in optimizers:
                    opt.param_groups[0]["lr"] = 1e-3
            losses.append(step(r, y))
        return losses

    torch.manual_seed(11)
    eager_losses = train(FastStep(eager, *opt_e, cuda_graph=False), opt_e)
    torch.manual_seed(11)
    step = FastStep(graphed, *opt_c, warmup_steps=2)
    graph_losses = train(step, opt_c)
    assert step.captured
    assert opt_c[0].param_groups[0]["lr"] == 1e-3  # still a float for the optimizer's users
    assert_same_state(eager, graphed, rtol=1e-4, atol=1e-4)  # atol: see the float32 CPU test
    for le, lg in zip(eager_losses, graph_losses):
        torch.testing.assert_close(le["d_loss"], lg["d_loss"], rtol=1e-4, atol=1e-5)
    # the returned losses are copies: the next replay does not change them
    before = graph_losses[-1]["g_loss"].clone()
    step(*data[0])
    assert torch.equal(before, graph_losses[-1]["g_loss"])


@needs_cuda
def test_cuda_graph_step_runs_other_shapes_eagerly_and_recaptures_after_reset():
    gan = small_gan().cuda()
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cuda"))
    gen = torch.Generator("cuda").manual_seed(0)
    step = FastStep(gan, opt_g, opt_d, generator=gen, warmup_steps=1)
    data = [(r.cuda(), y.cuda()) for r, y in batches(3)]
    for r, y in data:
        step(r, y)
    assert step.captured
    grads = [p.grad for p in gan.parameters()]
    small = step(data[0][0][:5], data[0][1][:5])  # a smaller last batch: eager, no error
    assert torch.isfinite(small["g_loss"])
    assert all(p.grad is g for p, g in zip(gan.parameters(), grads))  # .grad still the graph's tensors
    before = [p.detach().clone() for p in gan.parameters()]
    step(*data[1])
    assert any(not torch.equal(a, p) for a, p in zip(before, gan.parameters()))  # replays train
    step.reset()
    assert not step.captured
    step(*data[2])
    assert step.captured


@needs_cuda
def test_cuda_graph_follows_a_momentum_ramp_of_sgd():
    """SGD reads its settings as Python numbers: a change makes the step capture anew."""
    torch.manual_seed(0)
    eager = small_gan().cuda()
    graphed = copy.deepcopy(eager)
    data = [(r.cuda(), y.cuda()) for r, y in batches(6)]

    def train(gan, cuda_graph):
        opts = [torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5) for net in (gan.generator, gan.discriminator)]
        step = FastStep(gan, *opts, cuda_graph=cuda_graph, warmup_steps=1)
        torch.manual_seed(3)
        for i, (r, y) in enumerate(data):
            for opt in opts:
                opt.param_groups[0]["momentum"] = 0.5 + 0.05 * i
            step(r, y)
        return step

    train(eager, False)
    step = train(graphed, True)
    assert step.captured
    assert_same_state(eager, graphed, rtol=1e-4, atol=1e-5)


@needs_cuda
def test_cuda_graph_needs_capturable_optimizers():
    gan = small_gan().cuda()
    opt_g, opt_d = gan.optimizers(fused=True)
    with pytest.raises(ValueError, match="not capturable"):
        FastStep(gan, opt_g, opt_d)
    FastStep(gan, opt_g, opt_d, cuda_graph=False)  # fine without a graph


# -- the benchmark --------------------------------------------------------------------------------------------
def test_flop_count_reproduces_the_reference_figures():
    flops = linear_flops(condgan.build("mnist_mlp"), 64)
    assert flops.generator_step / 1e9 == pytest.approx(1.08, abs=0.005)
    assert flops.discriminator_step / 1e9 == pytest.approx(0.81, abs=0.005)
    assert flops.total / 1e9 == pytest.approx(1.89, abs=0.005)
    assert linear_flops(condgan.build("mnist_mlp"), 128).total == pytest.approx(2 * flops.total)


def test_recorded_matmuls_agree_with_the_analytic_count():
    """The plain step runs exactly the counted matmuls; the fast step skips D's weight gradients in G's update
    and the image columns' input gradient of D's first layer in D's update."""
    config = condgan.apply_overrides(condgan.get_component("preset", "mnist_mlp").config(), SMALL)
    work = Workload(config, 8, torch.device("cpu"), dataset_size=64)
    full = sum(c.flops for c in work.matmuls("plain"))
    executed = sum(c.flops for c in work.matmuls("fast"))
    flops = linear_flops(work.new_gan(), 8)
    d_forward = flops.discriminator_step / 6
    assert full == flops.total
    # and the input gradient of D's first layer in D's update for the image columns (only the
    # embedding's need one): 2 * B * 48 * (12 * 12) per judged batch, real and fakes
    image_input_grad = 2 * (2 * 8 * 48 * 12 * 12)
    assert executed == flops.total - d_forward - image_input_grad
    replay = MatmulReplay(work.matmuls("plain"), torch.device("cpu"))
    assert replay.flops == full
    replay.run(1)


def test_benchmark_script_quick_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "step_throughput.py"), "--device", "cpu", "--quick", "--threads", "1",
         "--data-root", str(tmp_path / "no-mnist"), "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    meta = result["meta"]
    for key in ("torch", "device", "device_name", "threads", "flop_convention", "load_avg_before"):
        assert key in meta
    assert meta["threads"] == 1 and meta["reference_data"] == "synthetic"
    rows = result["batch_sizes"]
    assert [r["batch_size"] for r in rows] == [16, 32]
    for row in rows + result["image_sizes"] + result["classes"]:
        for key in ("steps_per_s", "images_per_s", "ms_per_step", "ms_min", "ms_max", "gflop_per_step", "gflop_per_s",
                    "ceiling_steps_per_s", "pct_of_ceiling", "pct_of_executed_ceiling"):
            assert row[key] > 0, key
        assert row["ms_min"] <= row["ms_per_step"] <= row["ms_max"]
        if row["conditioner"] == "embedding":  # recorded = counted; a one-hot input needs no input gradient
            assert row["recorded_full_gflop_per_step"] == pytest.approx(row["gflop_per_step"])
        else:
            assert row["recorded_full_gflop_per_step"] < row["gflop_per_step"]
    ref = rows[0]["reference"]
    assert ref["data"] == "synthetic" and ref["steps_per_s"] > 0
    assert rows[0]["speedup_vs_reference"] == pytest.approx(ref["ms_per_step"] / rows[0]["ms_per_step"])
    assert [r["image_size"] for r in result["image_sizes"]] == [28, 32]
    assert {(r["num_classes"], r["conditioner"]) for r in result["classes"]} == {
        (10, "onehot"), (10, "embedding"), (100, "onehot"), (100, "embedding")}
    onehot_100 = next(r for r in result["classes"] if r["num_classes"] == 100 and r["conditioner"] == "onehot")
    embed_100 = next(r for r in result["classes"] if r["num_classes"] == 100 and r["conditioner"] == "embedding")
    assert onehot_100["gflop_per_step"] > embed_100["gflop_per_step"]  # one-hot widens the first layers
    assert len(result["ablation"][0]["variants"]) >= 4
    assert set(result["ops_per_step"]) >= {"plain eager step", "condgan fast step", "reference loop"}
    assert "| batch |" in proc.stdout and "synthetic" in md.read_text()


# -- data ----------------------------------------------------------------------------------------------------
def test_tensor_resize_matches_pil_when_upscaling():
    from PIL import Image

    from condgan.data import resize_images

    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    for size in (32, 64, 14):
        pil = np.stack([np.asarray(Image.fromarray(i.numpy(), mode="L").resize((size, size), Image.BILINEAR)) for i in images])
        assert torch.equal(resize_images(images, size), torch.from_numpy(pil)), size


def test_to_float_matches_the_reference_transforms():
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    expected = (images.float() / 255 - 0.5) / 0.5  # ToTensor, then Normalize([0.5], [0.5])
    torch.testing.assert_close(to_float(images), expected, rtol=0, atol=1e-6)


@pytest.mark.skipif(not (Path("/work/shared/data") / "MNIST" / "raw").is_dir(), reason="needs MNIST under /work/shared/data")
def test_load_mnist_resizes_as_the_reference_does():
    import torchvision
    from torchvision import transforms

    images, labels = load_mnist("/work/shared/data", train=False, download=False)
    assert images.shape == (10000, 1, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    ds = torchvision.datasets.MNIST("/work/shared/data", train=False, download=False,
                                    transform=transforms.Compose([transforms.Resize(32), transforms.ToTensor(),
                                                                  transforms.Normalize([0.5], [0.5])]))
    for i in (0, 1, 4321, 9999):
        x, label = ds[i]
        torch.testing.assert_close(to_float(images[i]), x, rtol=0, atol=1e-6)
        assert labels[i].item() == label


@needs_cuda
def test_cuda_graph_skips_non_finite_updates_on_the_device():
    torch.manual_seed(0)
    gan = small_gan().cuda()
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cuda"))
    step = FastStep(gan, opt_g, opt_d, warmup_steps=1, skip_nonfinite=True)
    data = [(r.cuda(), y.cuda()) for r, y in batches(4)]
    for r, y in data[:3]:
        assert float(step(r, y)["skipped"]) == 0
    assert step.captured
    scale = torch.ones((), device="cuda")  # read by the graph: set to NaN to poison G's loss in the replay
    gan.loss.generator_loss = (lambda original: lambda score: original(score) * scale)(gan.loss.generator_loss)
    step.reset()
    step(*data[0])  # captures anew with the scale in the graph
    before = [p.detach().clone() for p in gan.generator.parameters()]
    scale.fill_(float("nan"))
    assert float(step(*data[1])["skipped"]) == 1  # G's update skipped inside the replay
    assert all(torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))
    scale.fill_(1.0)
    assert float(step(*data[2])["skipped"]) == 0
    assert not all(torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))


def test_d_update_skips_only_the_image_columns_input_gradient(float64):
    """D.judge on images that need no gradient: the same gradients for every D parameter, one product fewer."""
    gan = small_gan(float64)
    D = gan.discriminator.eval()  # no dropout: the two passes must compute the same function
    x, y = torch.rand(6, 1, 12, 12), torch.randint(0, 10, (6,))
    grads = []
    for leaf in (False, True):  # an image leaf that asks for a gradient takes the full path
        D.zero_grad(set_to_none=True)
        images = x.clone().requires_grad_(leaf)
        calls = record_matmuls(lambda: (D.judge(images, y, check=False)[0] ** 2).sum().backward())
        grads.append(([p.grad.clone() for p in D.parameters()], sum(c.flops for c in calls)))
    (short, flops_short), (full, flops_full) = grads
    assert flops_short == flops_full - 2 * 6 * 48 * 144  # the image columns' input-gradient product is gone
    for a, b in zip(short, full):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert D.conditioner.embedding.weight.grad.abs().sum() > 0  # the code's gradient still reaches the embedding


@pytest.mark.parametrize("cls,options", [(torch.optim.Adam, {}), (torch.optim.Adam, {"weight_decay": 0.01, "maximize": True}),
                                         (torch.optim.AdamW, {"weight_decay": 0.01})])
def test_fused_adam_step_is_bitwise_adam_step(cls, options):
    from condgan.training.optim import fused_adam_step

    torch.manual_seed(0)
    params = [torch.randn(7, 5, requires_grad=True), torch.randn(5, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    opts = [cls(ps, lr=1e-2, betas=(0.5, 0.999), fused=True, **options) for ps in (params, twins)]
    for step in range(4):
        grads = [torch.randn_like(p) for p in params]
        for ps in (params, twins):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
        opts[0].step()
        done = fused_adam_step(opts[1])
        assert done == (step > 0)  # the first step creates the state: left to opt.step()
        if not done:
            opts[1].step()
        opts[1].param_groups[0]["lr"] *= 0.5  # a schedule: read at each call
        opts[0].param_groups[0]["lr"] *= 0.5
    for a, b in zip(params, twins):
        assert torch.equal(a, b)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert all(torch.equal(opts[0].state[a][key], opts[1].state[b][key]) for a, b in zip(params, twins))


def test_fused_adam_step_leaves_other_optimizers_to_their_step():
    from condgan.training.optim import fused_adam_step

    p = torch.randn(3, requires_grad=True)
    for opt in (torch.optim.SGD([p], lr=0.1), torch.optim.Adam([p], foreach=True), torch.optim.Adam([p], fused=True, amsgrad=True)):
        p.grad = torch.ones(3)
        opt.step()  # the state exists
        before = p.detach().clone()
        assert fused_adam_step(opt) is False and torch.equal(p, before)
    opt = torch.optim.Adam([p], fused=True)
    opt.step()
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(lambda *args: None)  # a global hook
    try:
        assert fused_adam_step(opt) is False
    finally:
        handle.remove()
    assert fused_adam_step(opt) is True
    opt.register_step_post_hook(lambda *args: None)
    assert fused_adam_step(opt) is False
