"""A scikit-learn model, as a user exports it: a StandardScaler + MLPClassifier pipeline on the
digits, written by skl2onnx with its defaults (ZipMap, the label and probability outputs); its
test data as .npz.

Needs scikit-learn and skl2onnx (not eiegen dependencies).  Writes skl_mlp.onnx and
skl_data.npz in the working directory; then:
make sim MODEL=skl_mlp.onnx CONFIG=pe8 DATA=skl_data.npz DENSITY=0.2
(docs: README, "Bring your own model")."""
import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
pipe = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=600, random_state=0))
pipe.fit(Xtr, ytr)
print(f"float test accuracy {pipe.score(Xte, yte):.4f}")
onx = to_onnx(pipe, Xtr[:1].astype(np.float32))
with open("skl_mlp.onnx", "wb") as f:
    f.write(onx.SerializeToString())
np.savez("skl_data.npz", x=Xte.astype(np.float64), y=yte.astype(np.int64))
