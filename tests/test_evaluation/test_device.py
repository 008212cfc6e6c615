"""``--device``: what ``resolve_device`` accepts and how it refuses, on CUDA
machines of 0, 1 and 2 devices simulated on any machine (issue 21)."""
import pytest
import torch

from ssql_mm.evaluation.device import resolve_device


@pytest.fixture
def cuda_devices(monkeypatch):
    """Pretend this machine has ``count`` CUDA devices (0: none)."""

    def pretend(count: int, cuda_build: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: count > 0)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)
        monkeypatch.setattr(torch.version, 'cuda',
                            '12.1' if cuda_build else None)
        monkeypatch.setattr(torch.version, 'hip', None, raising=False)

    return pretend


def _refusal(name: str) -> str:
    with pytest.raises(ValueError) as err:
        resolve_device(name)
    message = str(err.value)
    assert '\n' not in message and message.startswith(f'--device {name}: ')
    return message


@pytest.mark.parametrize('name', ['cuda', 'cuda:0', 'cuda:1'])
def test_devices_the_machine_has_are_accepted(cuda_devices, name):
    cuda_devices(2)
    assert resolve_device(name) == torch.device(name)


def test_default_is_cuda_when_there_is_one(cuda_devices):
    cuda_devices(2)
    assert resolve_device() == torch.device('cuda')
    cuda_devices(0)
    assert resolve_device() == torch.device('cpu')
    assert resolve_device('cpu') == torch.device('cpu')


def test_index_beyond_the_devices_names_the_count_and_the_fix(cuda_devices):
    cuda_devices(2)
    message = _refusal('cuda:7')
    assert 'this machine has 2 CUDA devices, cuda:0 to cuda:1' in message
    assert 'pick one of them or cpu' in message
    assert 'cuda:0 to cuda:1' in _refusal('cuda:2')


def test_index_beyond_a_single_device(cuda_devices):
    cuda_devices(1)
    assert resolve_device('cuda:0') == torch.device('cuda:0')
    message = _refusal('cuda:1')
    assert 'this machine has 1 CUDA device, cuda:0;' in message
    assert 'cuda:0 to' not in message


@pytest.mark.parametrize('name', ['cuda', 'cuda:0', 'cuda:3'])
def test_no_cuda_device_says_why_and_names_cpu(cuda_devices, name):
    cuda_devices(0)
    message = _refusal(name)
    assert 'no CUDA device is visible' in message
    assert 'CUDA_VISIBLE_DEVICES' in message
    assert message.endswith('use --device cpu.')
    cuda_devices(0, cuda_build=False)
    message = _refusal(name)
    assert f'this torch build ({torch.__version__}) has no CUDA support' in \
        message
    assert message.endswith('use --device cpu.')


@pytest.mark.parametrize('name,words', [
    ('gpu', 'is not a device name'),
    ('cuda:-1', 'is not a device name'),
    ('cuda:x', 'is not a device name'),
    ('meta', 'ssql_mm runs on cpu, cuda or mps devices'),
])
def test_names_that_are_not_usable_devices(cuda_devices, name, words):
    cuda_devices(2)
    with pytest.raises(ValueError, match=words) as err:
        resolve_device(name)
    assert '\n' not in str(err.value)


def test_mps_without_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: False)
    assert 'MPS is not available' in _refusal('mps')
