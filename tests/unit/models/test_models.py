import pytest
import torch

from expresso.models import MLP, RowGRU, SmallCNN


@pytest.mark.parametrize(
    "build",
    [
        lambda: MLP(num_classes=10, hidden=[32, 16], dropout=0.1),
        lambda: SmallCNN(num_classes=10),
        lambda: RowGRU(num_classes=10),
        lambda: RowGRU(num_classes=10, bidirectional=True, num_layers=2),
    ],
    ids=["mlp", "cnn", "gru", "bigru"],
)
def test_models_map_digit_images_to_class_logits_and_learn(build):
    torch.manual_seed(0)  # before the model is built: its initial weights are part of the test
    model = build()
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    assert model(x).shape == (16, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_mlp_layers_follow_hidden_sizes():
    widths = [m.out_features for m in MLP(num_classes=3, hidden=[7, 5]).modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [7, 5, 3]
