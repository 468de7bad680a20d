import pytest
import torch

import ltzoo


def test_fc_head_is_affine_map_and_exposes_cam_weights():
    head = ltzoo.create_head("fc", in_features=4, num_classes=3)
    h = torch.randn(5, 4)
    expected = h @ head.fc.weight.T + head.fc.bias
    assert torch.allclose(head(h), expected)
    assert head.cam_weights().shape == (3, 4)


@pytest.mark.parametrize("num_classes", [0, -2])
def test_fc_head_rejects_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        ltzoo.create_head("fc", in_features=4, num_classes=num_classes)


def test_unknown_head_lists_fc():
    with pytest.raises(ValueError, match="closest: fc"):
        ltzoo.create_head("fcc", in_features=4, num_classes=3)
