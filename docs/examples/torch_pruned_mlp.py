"""A user's model, as a user makes it: a torch MLP on scikit-learn's digits, pruned 80 % with
torch.nn.utils.prune, exported by torch.onnx (legacy) and torch.export; its test data as .npz.

Needs torch and scikit-learn (not eiegen dependencies). Writes mlp.onnx, mlp.pt2, mlp.pth and
data.npz in the working directory; then: make sim MODEL=mlp.onnx CONFIG=pe8 DATA=data.npz
(docs: README, "Bring your own model")."""
import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                      nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), 1e-2)
xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)


def fit(epochs):
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()


fit(40)
for m in (model[0], model[2], model[4]):
    prune.l1_unstructured(m, "weight", amount=0.8)
fit(20)  # retrain with the masks
for m in (model[0], model[2], model[4]):
    prune.remove(m, "weight")
model.eval()
with torch.no_grad():
    acc = (model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean()
dens = [float((m.weight != 0).float().mean()) for m in (model[0], model[2], model[4])]
print(f"float test accuracy {acc:.4f}, densities {[round(d, 3) for d in dens]}")
x0 = torch.from_numpy(Xte[:1])
torch.onnx.export(model, (x0,), "mlp.onnx", dynamo=False, input_names=["x"],
                  output_names=["logits"], dynamic_axes={"x": {0: "n"}})
torch.export.save(torch.export.export(model, (x0,)), "mlp.pt2")
torch.save(model.state_dict(), "mlp.pth")
np.savez("data.npz", x=Xte.astype(np.float64), y=yte.astype(np.int64))
