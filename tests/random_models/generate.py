#!/usr/bin/env python3
"""Writes tests/random_models/generated.rs: random valid models drawn from the whole
language (v2 included), for tests/integration/random_models.rs to compile with `cnn!` and compare
with the interpreter (forward, gradients, three training steps).

    python3 tests/random_models/generate.py [COUNT] [SEED]      # default 40 models, seed 1

Draws include dilated padding past the kernel (`pad D dilation D`), tiny maps
under kernels wider than the input (taps that read only padding), and version 3:
named items read again by `add`, `concat`, `mul` (a squeeze-and-excitation gate)
and `from` branches, `upsample` (nearest, bilinear), `convtranspose`, and
segmentation models (a softmax per pixel, label maps, `ignore`).
Candidates are drawn without regard to shapes; the checker (`cnnc check`, built
from this checkout) keeps the valid ones. Smooth activations and average pooling
only: relu kinks and max-pooling ties can flip between two float32 summation
orders, which would test rounding rather than the compiler's lowering.
"""
import random, subprocess, sys, os, tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
rng = random.Random(seed)
ACTS = ["tanh", "sigmoid", "silu", "gelu", ""]

def act():
    return rng.choice(ACTS)

def conv(c):
    f = rng.choice([c, 2 * c, 4, 6])
    groups = rng.choice([1, 1, 1, 2, c]) if c > 1 else 1
    if f % groups or c % groups:
        groups = 1
    k = rng.choice([1, 2, 3, 3, 5])
    d = rng.choice([2, 3]) if rng.random() < 0.3 else 1
    opts = [f"conv {f} kernel {k}"]
    if rng.random() < 0.3: opts.append(f"stride {rng.choice([1, 2])} round floor")
    if d > 1 and rng.random() < 0.6:
        # `pad D dilation D`: padding past the kernel that keeps a dilated 3x3's size.
        opts.append(f"pad {d}")
    elif rng.random() < 0.5:
        # One side only: taps that read only padding.
        opts.append(f"pad {rng.choice(['1', 'same', '1x0', str(k // 2), f'right {k - 1}', f'left {k - 1} top 1'])}")
    if d > 1: opts.append(f"dilation {d}")
    if groups > 1: opts.append(f"groups {groups}")
    if rng.random() < 0.3: opts.append("bias off")
    return " ".join(opts) + " " + act(), f

def no_bias_before_batchnorm(items):
    """A conv or dense right before a batchnorm gets `bias off`, as in practice: its
    bias gradient is rounding noise, which two summation orders cannot agree on."""
    for i in range(len(items) - 1):
        if items[i + 1].startswith("batchnorm") and items[i].split()[0] in ("conv", "dense") and "bias off" not in items[i]:
            words = items[i].split()
            # the options end before a trailing activation word
            cut = len(words)
            if words[-1] in ("tanh", "sigmoid", "silu", "gelu"):
                continue  # an activation sits between them: the bias is not cancelled
            items[i] = " ".join(words[:cut]) + " bias off"
    return items

names = [0]

def fresh():
    names[0] += 1
    return f"n{names[0]}"

def graph_items(c):
    """A v3 pattern on `c` channels whose joins fit by construction."""
    a = act()
    kind = rng.choice(["add", "concat", "se", "branch", "up", "transpose", "input"])
    x = fresh()
    if kind == "add":
        return [f"{x}: conv {c} kernel 3 pad 1 {a}", f"conv {c} kernel 3 pad 1 {act()}", f"add {x} {act()}"], c
    if kind == "concat":
        g = rng.choice([2, 3])
        return [f"{x}: conv {c} kernel 1 {a}", f"conv {g} kernel 3 pad 1 {act()}", f"concat {x}"], c + g
    if kind == "se":
        return [f"{x}: conv {c} kernel 1 {a}", "avgpool global", f"conv {max(1, c // 2)} kernel 1 tanh",
                f"conv {c} kernel 1 sigmoid", f"mul {x}"], c
    if kind == "branch":
        y = fresh()
        return [f"{x}: conv {c} kernel 1 {a}", f"{y}: conv 2 kernel 1 {act()}", f"from {x}",
                f"conv 3 kernel 3 pad 1 {act()}", f"concat {y} {x}"], 5 + c
    if kind == "up":
        return [f"upsample {rng.choice(['2', '2x1', '1x2'])} {rng.choice(['', 'nearest', 'bilinear'])}"], c
    if kind == "transpose":
        f = rng.choice([2, 3, c])
        return [rng.choice([f"convtranspose {f} kernel 2 stride 2 {a}",
                            f"convtranspose {f} kernel 3 stride 2 pad 1 output_pad 1 {a}",
                            f"convtranspose {f} kernel 3 pad 1 {a}"])], f
    return [f"conv {c} kernel 3 pad 1 {a}", "concat input"], None

def image_items(c, depth=0, graph=False):
    items = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if graph and depth == 0 and r < 0.35:
            more, c2 = graph_items(c)
            items += more
            if c2 is None:
                return items, None
            c = c2
        elif r < 0.4:
            text, c = conv(c)
            items.append(text)
        elif r < 0.55:
            items.append("batchnorm " + act())
        elif r < 0.65:
            items.append(rng.choice(["avgpool 2", "avgpool 2 stride 1", "avgpool 3 stride 2 pad 1 round ceil"]))
        elif r < 0.85 and depth < 2:
            body, _ = image_items(c, depth + 1)
            body_text = " ".join(no_bias_before_batchnorm(body))
            if rng.random() < 0.5:
                short = f"shortcut {{ conv {c} kernel 1 bias off }}"
                body_text += " " + short
            items.append(f"residual {{ {body_text} }} {act()}")
        else:
            items.append(rng.choice(["tanh", "silu", "gelu", "sigmoid"]))
    return items, c

def model(i):
    c, h, w = rng.randint(1, 3), rng.randint(5, 8), rng.randint(5, 8)
    tiny = rng.random() < 0.15
    if tiny:
        # Tiny maps: kernels wider than the input, whose outer taps read only padding.
        h, w = rng.randint(1, 3), rng.randint(1, 3)
    lines = [f"input {c}x{h}x{w}"]
    if rng.random() < 0.3:
        lines[0] += " normalize mean " + " ".join("0.1" for _ in range(c)) + " std " + " ".join("0.5" for _ in range(c))
    if tiny:
        f = rng.choice([1, 2, 4, 17])
        lines.append(rng.choice([f"conv {f} kernel 5 pad 2", f"conv {f} kernel 1x3 pad right 2",
                                 f"conv {f} kernel 3x5 pad left 4 top 1 bottom 1", f"conv {f} kernel 3 pad 3 dilation 3"]) + " " + act())
        items = ["batchnorm " + act()] if rng.random() < 0.5 else []
    else:
        items, last = image_items(c, graph=rng.random() < 0.6)
    lines += items
    if not tiny and rng.random() < 0.2:
        # Segmentation: a softmax over the classes at every position.
        classes = rng.randint(2, 4)
        lines[1:] = no_bias_before_batchnorm(lines[1:])
        lines.append(f"conv {classes} kernel 1 softmax")
        ignore = rng.choice(["", "ignore 255", "ignore 0"])
        opt = rng.choice(["sgd lr 0.05", "adam lr 0.001"]) if not any("batchnorm" in l for l in lines) else "sgd lr 0.05"
        lines.append(f"train {{ loss cross_entropy {ignore} optimizer {opt} batch {rng.randint(3, 6)} }}")
        body = "\n        ".join(" ".join(l.split()) for l in lines)
        return f"model R{i} {{\n        {body}\n    }}"
    lines.append(rng.choice(["flatten", "avgpool global flatten"]))
    if rng.random() < 0.5:
        lines.append(f"dense {rng.randint(3, 8)} {'bias off' if rng.random() < 0.3 else ''} {act()}")
        if rng.random() < 0.4:
            lines.append("batchnorm " + act())
    lines[1:] = no_bias_before_batchnorm(lines[1:])
    loss = rng.choice(["cross_entropy", "mse", "binary_cross_entropy"])
    classes = rng.randint(2, 4)
    if loss == "cross_entropy":
        lines.append(f"dense {classes} softmax")
    elif loss == "binary_cross_entropy":
        lines.append(f"dense {classes} sigmoid")
    else:
        lines.append(f"dense {classes}")
    opts = ["sgd lr 0.05", "sgd lr 0.05 momentum 0.9 nesterov", "adam lr 0.001", "adamw lr 0.001"]
    if any("batchnorm" in l for l in lines):
        # A bias right before a batchnorm has a gradient of rounding noise, which Adam
        # would amplify to steps of about lr: compare those models under sgd.
        opts = opts[:2]
    opt = rng.choice(opts)
    wd = rng.choice(["", "weight_decay 0.001"])
    batch = rng.randint(3, 6)
    lines.append(f"train {{ loss {loss} optimizer {opt} {wd} batch {batch} }}")
    body = "\n        ".join(" ".join(l.split()) for l in lines)
    return f"model R{i} {{\n        {body}\n    }}"

cnnc = os.path.join(root, "target", "debug", "cnnc")
subprocess.run(["cargo", "build", "-q", "-p", "cnnc-cli"], cwd=root, check=True)
kept, tried = [], 0
while len(kept) < count:
    text = model(len(kept))
    tried += 1
    with tempfile.NamedTemporaryFile("w", suffix=".cnn", delete=False) as f:
        f.write(text)
    checked = subprocess.run([cnnc, "check", f.name], capture_output=True, text=True)
    # Valid and without warnings (cnn! would print them when the tests compile).
    ok = checked.returncode == 0 and "warning[" not in checked.stdout + checked.stderr
    os.unlink(f.name)
    if ok:
        kept.append(text)
out = [f"// Written by tests/random_models/generate.py {count} {seed}: {count} valid models of {tried} drawn.\n",
       "// Do not edit; rerun the script.\n\n", "cnn_macros::cnn! {\n"]
out += ["    " + t + "\n" for t in kept]
out.append("}\n\n/// A model's name, its text and a constructor.\n")
out.append("pub type Case = (&'static str, &'static str, fn() -> Box<dyn cnnc::Train>);\n\n")
out.append("/// Every model.\n")
out.append("pub fn all() -> Vec<Case> {\n    vec![\n")
for i, t in enumerate(kept):
    src = t.replace("\\", "\\\\").replace('"', '\\"')
    out.append(f'        ("R{i}", "{src}", || Box::new(R{i}::new({i}))),\n')
out.append("    ]\n}\n")
path = os.path.join(root, "tests", "random_models", "generated.rs")
open(path, "w").write("".join(out))
# As `cargo fmt` would leave it (rustfmt.toml at the root applies).
subprocess.run(["rustfmt", "--edition", "2021", path], check=True)
print(f"kept {count} of {tried} candidates")
