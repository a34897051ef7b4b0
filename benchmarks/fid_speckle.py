"""Issue 16: why the MNIST classifier's FID ranked speckled 28x28 samples above smooth 32x32 ones, and the fix.

    PYTHONPATH=. python benchmarks/fid_speckle.py DATA_ROOT RUNS   # RUNS holds classifier.pt (the original
    # MNIST classifier), judge_mnist28.pt, judge_mnist32.pt, paper/samples.npz, dcgan/samples.npz

Prints {set: {feature space: [FID, label accuracy]}} for real MNIST training images (10,000,
randperm(60000, 0)[1000:11000]) at 28 and at 32 (the loader's enlargement), with 1-2% salt noise,
and the two presets' samples; reference: the MNIST test set at the judge's size.
"""
import sys, json, time, copy
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torch
from metrics_helpers import speckle
from condgan.data import load_mnist
from condgan.metrics import load_judge, judge_outputs, fid_from_features, load_npz
torch.set_num_threads(1)
R, RUNS = sys.argv[1], sys.argv[2]
test28, ty = load_mnist(R, train=False, image_size=28, download=False)
test32, _ = load_mnist(R, train=False, image_size=32, download=False)
tr28, y = load_mnist(R, train=True, image_size=28, download=False)
tr32, _ = load_mnist(R, train=True, image_size=32, download=False)
idx = torch.randperm(60000, generator=torch.Generator().manual_seed(0))[1000:11000]
c28, c32, yl = tr28[idx].float() / 255, tr32[idx].float() / 255, y[idx]
paper, pl = load_npz(RUNS + '/paper/samples.npz'); dcgan, dl = load_npz(RUNS + '/dcgan/samples.npz')
sets28 = {'real 28': (c28, yl), 'real 28 + 1% salt': (speckle(c28, .01), yl), 'real 28 + 2% salt': (speckle(c28, .02), yl), 'mnist_paper (28)': (paper, pl)}
sets32 = {'real 32 (loader)': (c32, yl), 'real 32 + 1% salt': (speckle(c32, .01), yl), 'mnist_dcgan_projection (32)': (dcgan, dl)}
out = {}
def run(name, judge, ref, sets):
    r = judge_outputs(judge, ref)[0]
    for s, (x, l) in sets.items():
        t = time.time(); f, h = judge_outputs(judge, x)
        out.setdefault(s, {})[name] = (round(fid_from_features(f, r).value, 3), round(float((h.argmax(1) == l).float().mean()), 4))
legacy = load_judge(RUNS + '/classifier.pt')
run('old: MNIST CNN 28, penultimate, resize rule', legacy, test28, {**sets28, **sets32})
for size, ref, sets in ((28, test28, sets28), (32, test32, sets32)):
    j = load_judge(f'{RUNS}/judge_mnist{size}.pt')
    run(f'judge {size}: stages + penultimate', j, ref, sets)
    p = copy.deepcopy(j); p.feature_layers = (2,); p.feature_scale = torch.ones(1)
    run(f'judge {size}: penultimate only', p, ref, sets)
print(json.dumps(out, indent=1))

