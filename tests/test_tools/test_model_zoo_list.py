"""``tools/model_zoo.py list`` says what is published: size, hash prefix and
headline result for weights, and which entries are configs only (issue 21,
case 8)."""
import runpy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHA = 'ab12cd34' + '0' * 56


def _entry(name, weights=None, checkpoint=None, results=None):
    return {'Name': name, 'Weights': weights, 'Results': results,
            'Metadata': {'Checkpoint': checkpoint} if checkpoint else {}}


def test_list_tells_published_from_config_only(tmp_path, capsys):
    linear = {'Task': 'Linear Evaluation', 'Dataset': 'CIFAR-10',
              'Metrics': {'Top 1 Accuracy (FP)': 91.2,
                          'Top 1 Accuracy (8w8a)': 91.0,
                          'Top 1 Accuracy (4w4a)': 89.5}}
    knn = {'Task': 'kNN Evaluation', 'Dataset': 'CIFAR-10',
           'Metrics': {'Top 1 Accuracy (FP)': 85.0}}
    index = tmp_path / 'model-index.yml'
    index.write_text(yaml.safe_dump({'Models': [
        _entry('b-published', 'https://host/b_ab12cd34.pth',
               {'File': 'b_ab12cd34.pth', 'SHA256': SHA, 'Size': 6 << 20},
               [knn, linear]),
        _entry('a-config-only'),
        _entry('c-mirror', None,
               {'File': 'c_ab12cd34.pth', 'SHA256': SHA, 'Size': 1 << 20}),
    ]}))
    main = runpy.run_path(str(REPO / 'tools' / 'model_zoo.py'))['main']
    assert main(['--index', str(index), 'list']) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in rows] == ['a-config-only', 'b-published',
                                           'c-mirror']
    assert rows[0].split()[1:] == ['config', 'only']
    assert rows[1].split()[1:] == ['weights', '6.0', 'MiB', 'sha256',
                                   'ab12cd34', 'linear', 'top-1', 'FP',
                                   '91.20,', '4w4a', '89.50']
    assert rows[2].split()[1:] == ['mirror', 'only', '1.0', 'MiB', 'sha256',
                                   'ab12cd34']
    assert main(['--index', str(index), 'list', '--names', 'pub']) == 0
    assert capsys.readouterr().out.split() == ['b-published']
