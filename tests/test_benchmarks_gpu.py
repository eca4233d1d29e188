"""benchmarks/gpu.py: its table and its refusal to time a GPU worker whose
graph stayed on the host. (The full run needs an NVIDIA GPU; on OpenCL it
is run by hand, see the README's GPU section.)"""
import os
import sys
from collections import OrderedDict

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
import gpu  # noqa: E402
import run  # noqa: E402

META = OrderedDict(date='2026-12-04 08:00 UTC', cpu='cpu', cores=16,
                   gpu='NVIDIA H200', pairs=2, data='random',
                   versions='python 3.12.3')


def row(name, gpu_steps, cpu_steps, torch_steps, kind='train'):
    spec = dict(run.ROWS[name][0], data_dir=None)
    steps = 10
    result = OrderedDict(row=name, spec=spec, steps=steps)
    for key, times in (('parmesan-gpu', gpu_steps),
                       ('parmesan-cpu', cpu_steps),
                       ('pytorch-gpu', torch_steps)):
        result[key] = OrderedDict(
            seconds=[run.per_epoch(spec, t, steps) for t in times],
            compile_s=3.0, settings={'device': 'cuda0', 'backend_nodes': 90,
                                     'nodes': 100})
    result['cpu_over_gpu'] = [c / g for c, g in zip(cpu_steps, gpu_steps)]
    result['gpu_over_pytorch'] = [g / t for g, t in zip(gpu_steps,
                                                        torch_steps)]
    return result


def test_table_has_the_epoch_times_and_the_ratios():
    text = gpu.report([row('iwae-k1', [0.1, 0.3], [2.0, 2.0],
                           [0.1, 0.1])], META)
    lines = text.splitlines()
    assert lines[1].split()[:3] == ['row', 'Parmesan', 'GPU']
    cells = lines[3].split()
    # 10 steps of batch 100 in 0.1 / 0.3 s: 6 and 18 s per 60,000 images
    assert cells[:3] == ['iwae-k1', '12.00', 's/epoch']
    assert cells[3:5] == ['120.00', 's/epoch']
    assert cells[5:7] == ['6.00', 's/epoch']
    assert ' '.join(cells[7:9]) == '2.00 (1.00-3.00)'
    assert ' '.join(cells[9:11]) == '13.33 (6.67-20.00)'
    assert 'NVIDIA H200' in text and '90 of 100 nodes' in text


class HostOnlyWorker(object):
    closed = 0

    def __init__(self, spec, flags='', compiledir=None, threads=1, env=None):
        self.info = {'settings': {'device': 'cpu', 'backend_nodes': 0,
                                  'nodes': 40}}
        self.flags = flags

    def close(self):
        HostOnlyWorker.closed += 1


def test_a_gpu_worker_on_the_host_stops_the_run(monkeypatch):
    monkeypatch.setattr(run, 'Worker', HostOnlyWorker)
    args = gpu.parse_args(['--device', 'cuda0', '--no-torch'])
    with pytest.raises(SystemExit, match='0 of 40 nodes'):
        gpu.start_workers(dict(run.ROWS['iwae-k1'][0]), args, {}, False)
    assert HostOnlyWorker.closed == 1
