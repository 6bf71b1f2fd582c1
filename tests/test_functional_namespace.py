"""tracenn.functional (torch.functional's names) and the atleast_*d calling forms."""
import pytest

import tracenn
import tracenn.functional as TF


def test_names_are_the_toplevel_functions():
    for name in TF.__all__:
        assert getattr(TF, name) is getattr(tracenn, name), name
    x = tracenn.arange(6.0).reshape(2, 3)
    assert TF.einsum("ij->j", x).tolist() == [3.0, 5.0, 7.0]
    assert [t.shape for t in TF.split(x, 1, dim=0)] == [(1, 3), (1, 3)]


def test_atleast_forms():
    a, s = tracenn.ones(2), tracenn.tensor(3.0)
    assert tracenn.atleast_1d(s).shape == (1,) and tracenn.atleast_1d(a) is a
    one, two = tracenn.atleast_2d(a, s)
    assert one.shape == (1, 2) and two.shape == (1, 1)
    assert [t.shape for t in tracenn.atleast_3d([a, s])] == [(1, 2, 1), (1, 1, 1)]
    assert [t.shape for t in tracenn.atleast_1d((s,))] == [(1,)]
    assert tracenn.atleast_2d() == ()


def test_names_match_torch():
    torch = pytest.importorskip("torch")
    assert sorted(TF.__all__) == sorted(torch.functional.__all__)
    a = torch.ones(2)
    assert [t.shape for t in torch.atleast_3d([a, torch.tensor(3.0)])] == [(1, 2, 1), (1, 1, 1)]
