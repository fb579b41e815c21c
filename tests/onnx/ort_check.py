"""ONNX Runtime against cnnc on the cases in DIR (written by tests/integration/onnx.rs):
each NAME.onnx with NAME.json ({"input": shape, "output": shape}), NAME.x.bin (the input)
and NAME.y.bin (cnnc's inference output), raw little-endian f32. A case passes when
every |ort - cnnc| <= 1e-4 * max(1, max |cnnc|). Prints a line per case, then
'N passed, M failed'; exits 1 when any failed."""
import glob, json, os, sys

import numpy as np
import onnxruntime as ort

so = ort.SessionOptions()
so.intra_op_num_threads = 1
passed, failed = 0, 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.onnx"))):
    name = path[:-5]
    shapes = json.load(open(name + ".json"))
    x = np.fromfile(name + ".x.bin", dtype="<f4").reshape(shapes["input"])
    want = np.fromfile(name + ".y.bin", dtype="<f4").reshape(shapes["output"])
    try:
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        got = s.run(None, {"input": x})[0]
        err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
        scale = max(1.0, float(np.max(np.abs(want))))
        ok = err <= 1e-4 * scale
        detail = f"max |diff| {err:.2e} (scale {scale:.2e})" if got.shape == want.shape else \
            f"shape {got.shape}, cnnc {want.shape}"
    except Exception as e:  # a graph ONNX Runtime refuses is a failure with its reason
        ok, detail = False, f"{type(e).__name__}: {str(e)[:300]}"
    print(f"{'ok' if ok else 'FAIL'} {os.path.basename(name)}: {detail}")
    passed, failed = passed + ok, failed + (not ok)
print(f"onnxruntime {ort.__version__}: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
