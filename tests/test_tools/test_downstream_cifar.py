"""The downstream CIFAR-10 recipe: its jobs, what it skips and reuses, and
the numbers its summary derives from finished jobs."""
import json
import os
import os.path as osp
import re

import pytest


@pytest.fixture
def recipe(load_benchmark):
    return load_benchmark('downstream_cifar')


def write_job(work, stage, job, top1):
    folder = osp.join(work, stage, job)
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'transfer.json'), 'w') as f:
        json.dump(dict(top1=top1), f)


def write_finetune(work, stage, job, checkpoint='/x/epoch_15.pth'):
    """A finished fine-tuning: its ``last_checkpoint`` names ``checkpoint``."""
    folder = osp.join(work, stage, job, 'finetune')
    os.makedirs(folder)
    with open(osp.join(folder, 'last_checkpoint'), 'w') as f:
        f.write(checkpoint)
    return osp.join(work, stage, job)


def option(cmd, key):
    options = cmd[cmd.index('--cfg-options') + 1:]
    values = [o.split('=', 1)[1] for o in options if o.startswith(key + '=')]
    assert len(values) == 1, (key, options)
    return values[0]


def test_jobs_go_seed_by_seed_and_skip_or_reuse_finished_work(recipe,
                                                             tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args([
        '--work', work, '--data', 'DATA', '--backbones', 'random',
        'simsiam_seed0=a.pth', 'ssql_seed0=b.pth', '--ft-seeds', '0', '1',
        '--stages', 'cls', 'qat', '--qat-bits', '3/4'])
    write_job(work, 'cls', 'simsiam_seed0_ft0',
              {'minmax': {'FP': 50.0}, 'mse': {'FP': 50.0},
               'mse:weights=false': {'FP': 50.0}, 'mse+qdrop': {'4w4a': 49.}})
    write_finetune(work, 'qat', 'ssql_seed0_ft1')
    jobs = recipe.jobs_to_run(args)
    assert [label for label, _, _ in jobs] == [
        'cls random ft0', 'cls ssql_seed0 ft0',
        'qat random ft0', 'qat simsiam_seed0 ft0', 'qat ssql_seed0 ft0',
        'cls random ft1', 'cls simsiam_seed0 ft1', 'cls ssql_seed0 ft1',
        'qat random ft1', 'qat simsiam_seed0 ft1', 'qat ssql_seed0 ft1']
    cmds = {label: cmd for label, cmd, _ in jobs}
    random_cls = cmds['cls random ft0']
    assert '--pretrained' not in random_cls  # random init: the config's
    assert random_cls[random_cls.index('--bits') + 1:
                      random_cls.index('--observers')] == [
        'fp', '8/8', '4/4', '3/3', '2/4']
    assert option(random_cls, 'randomness.seed') == '0'
    for loader in ('train', 'val', 'test', 'calib'):
        assert option(random_cls, f'{loader}_dataloader.dataset.data_root') \
            == 'DATA'
    qat = cmds['qat ssql_seed0 ft1']
    assert qat[qat.index('--pretrained') + 1] == 'b.pth'
    assert qat[qat.index('--finetuned') + 1] == '/x/epoch_15.pth'
    assert '--qat' in qat and '--bits' not in qat
    assert option(qat, 'model.backbone.w_bits') == '3'
    assert option(qat, 'model.backbone.a_bits') == '4'
    assert option(qat, 'randomness.seed') == '1'
    assert '--finetuned' not in cmds['qat ssql_seed0 ft0']
    assert jobs[0][2] == osp.join(work, 'cls', 'random_ft0.log')


def test_epochs_move_the_lr_steps_with_them(recipe, tmp_path):
    args = recipe.parse_args(['--work', str(tmp_path), '--backbones',
                              'random', '--epochs', '10', '--stages', 'cls',
                              '--ft-seeds', '0'])
    (_, cmd, _), = recipe.jobs_to_run(args)
    assert option(cmd, 'train_cfg.max_epochs') == '10'
    assert option(cmd, 'param_scheduler.milestones') == '[6,8]'


def test_summary_pairs_ssql_with_simsiam_of_the_same_seeds(recipe, tmp_path):
    work = str(tmp_path)
    runs = {  # (pretraining seed, fine-tuning seed) -> FP, 4w4a
        'simsiam_seed0_ft0': (60.0, 40.0), 'ssql_seed0_ft0': (59.0, 45.0),
        'simsiam_seed0_ft1': (62.0, 42.0), 'ssql_seed0_ft1': (61.0, 48.0),
        'simsiam_seed1_ft0': (61.0, 41.0), 'ssql_seed1_ft0': (60.0, 43.0),
        'random_ft0': (50.0, 20.0)}
    for job, (fp, low) in runs.items():
        write_job(work, 'cls', job, {'minmax': {'FP': fp, '4w4a': low}})
    # ssql_seed1_ft1 has no SimSiam partner: counted alone, never paired.
    write_job(work, 'cls', 'ssql_seed1_ft1',
              {'minmax': {'FP': 70.0, '4w4a': 70.0}})
    write_job(work, 'qat', 'ssql_seed0_ft0', {'qat': {'4w4a': 55.0}})
    text, summary = recipe.summarize(recipe.collect(work))
    cls = summary['cls']['minmax']
    assert cls['ssql_minus_simsiam']['4w4a'][0] == pytest.approx(
        (5 + 6 + 2) / 3)
    assert cls['ssql_minus_simsiam']['4w4a'][2] == 3
    assert cls['ssql_minus_simsiam']['FP'][0] == pytest.approx(-1.0)
    assert cls['top1']['ssql']['4w4a'][2] == 4
    assert cls['top1']['ssql']['4w4a'][0] == pytest.approx(
        (45 + 48 + 43 + 70) / 4)
    assert cls['drop']['simsiam']['4w4a'][0] == pytest.approx(20.0)
    assert cls['drop']['random']['4w4a'][2] == 1
    assert summary['qat']['qat']['top1']['ssql']['4w4a'][0] == 55.0
    assert '| 4w4a | +4.33 ± ' in text
    assert 'random (n=1)' in text


@pytest.mark.parametrize('argv, message', [
    (['--backbones', 'simsiam=a.pth'], 'NAME=PATH'),
    (['--backbones', 'random', '--qat-bits', 'fp'], 'uniform W/A'),
    (['--backbones', 'random', '--bits', '9/x'], 'bit setting'),
    (['--backbones', 'random', '--epochs', '1'], '--epochs must be'),
    (['--backbones', 'random', '--paste-val', '0'], '--paste-val must be'),
    ([], '--backbones is required'),
])
def test_bad_arguments_are_one_line_errors(recipe, capsys, argv, message):
    with pytest.raises(SystemExit):
        recipe.parse_args(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_a_new_observer_tests_finished_fine_tunings_only(recipe, tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args([
        '--work', work, '--data', 'DATA', '--backbones', 'ssql_seed0=b.pth',
        '--ft-seeds', '1', '--stages', 'cls', 'qat',
        '--observers', 'minmax', 'mse:weights=false', '--reconstructions'])
    write_job(work, 'cls', 'ssql_seed0_ft1',
              {'minmax': {'FP': 50.0, '4w4a': 40.0}})
    job = write_finetune(work, 'cls', 'ssql_seed0_ft1')
    write_job(work, 'qat', 'ssql_seed0_ft1', {'qat': {'4w4a': 45.0}})
    (label, cmd, log), = recipe.jobs_to_run(args)
    assert label == 'cls ssql_seed0 ft1 ptq mse:weights=false'
    assert cmd[cmd.index('--finetuned') + 1] == '/x/epoch_15.pth'
    assert cmd[cmd.index('--observers') + 1:cmd.index('--cfg-options')] == [
        'mse:weights=false']
    assert cmd[cmd.index('--bits') + 1:cmd.index('--observers')] == [
        '8/8', '4/4', '3/3', '2/4']
    assert '--pretrained' not in cmd
    assert option(cmd, 'randomness.seed') == '1'
    out = cmd[cmd.index('--work-dir') + 1]
    assert out == osp.join(job, 'ptq-mse_weights_false')
    assert log == out + '.log'

    write_job(job, '', 'ptq-mse_weights_false',
              {'mse:weights=false': {'4w4a': 44.0}})
    assert recipe.jobs_to_run(args) == []
    scores = recipe.collect(work)['cls']
    assert scores['mse:weights=false']['ssql_seed0_ft1'] == {
        'FP': 50.0, '4w4a': 44.0}
    assert scores['minmax']['ssql_seed0_ft1']['4w4a'] == 40.0


def test_detection_and_segmentation_jobs_train_on_the_paste_set(recipe,
                                                                tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args([
        '--work', work, '--data', 'DATA', '--backbones', 'ssql_seed0=b.pth',
        '--ft-seeds', '1', '--stages', 'det', 'seg-qat', 'cls'])
    cmds = {label: cmd for label, cmd, _ in recipe.jobs_to_run(args)}
    assert list(cmds) == ['det ssql_seed0 ft1', 'seg-qat ssql_seed0 ft1',
                          'cls ssql_seed0 ft1']
    paste = osp.join(work, 'paste')
    det, seg, cls = cmds.values()
    assert 'mmdet' in det[2] and 'mmseg' in seg[2]
    assert det[det.index('--metric') + 1] == 'coco/bbox_mAP'
    assert seg[seg.index('--metric') + 1] == 'mIoU'
    assert cls[cls.index('--metric') + 1] == 'accuracy/top1'
    for cmd in (det, seg):
        for loader in ('train', 'val', 'test'):
            assert option(cmd, f'{loader}_dataloader.dataset.data_root') \
                == paste
        assert not any(o.startswith('calib_dataloader') for o in
                       cmd[cmd.index('--cfg-options') + 1:])
        assert option(cmd, 'randomness.seed') == '1'
    for evaluator in ('val', 'test'):
        assert option(det, f'{evaluator}_evaluator.ann_file') == osp.join(
            paste, 'annotations', 'val.json')
    assert '--qat' not in det and '--bits' in det
    assert '--qat' in seg and option(seg, 'model.backbone.a_bits') == '4'
    assert not any('evaluator' in o for o in seg)
    assert option(cls, 'calib_dataloader.dataset.data_root') == 'DATA'


def test_a_finished_detection_job_gets_new_observers_as_ptq_only(recipe,
                                                                 tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args(['--work', work, '--backbones', 'random',
                              '--ft-seeds', '0', '--stages', 'det',
                              '--observers', 'minmax', 'mse',
                              '--reconstructions'])
    write_job(work, 'det', 'random_ft0', {'minmax': {'FP': 0.3}})
    write_finetune(work, 'det', 'random_ft0', '/x/epoch_5.pth')
    (label, cmd, _), = recipe.jobs_to_run(args)
    assert label == 'det random ft0 ptq mse'
    assert 'mmdet' in cmd[2]
    assert cmd[cmd.index('--metric') + 1] == 'coco/bbox_mAP'
    assert option(cmd, 'test_evaluator.ann_file').startswith(
        osp.join(work, 'paste'))


def test_reconstructions_run_after_fine_tuning_at_their_own_bits(recipe,
                                                                 tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args(['--work', work, '--backbones', 'random',
                              'ssql_seed0=b.pth', '--ft-seeds', '0',
                              '--stages', 'cls', '--observers', 'minmax',
                              '--reconstructions', 'mse+qdrop',
                              'mse+brecq:iters=200'])
    assert args.reconstruction_bits == ['4/4', '2/4']
    write_job(work, 'cls', 'ssql_seed0_ft0',
              {'minmax': {'FP': 60.0, '4w4a': 50.0}})
    job = write_finetune(work, 'cls', 'ssql_seed0_ft0')
    # The fresh job fine-tunes with the observers only; the finished one
    # gets one PTQ-only job for both reconstructions, at their bits.
    (_, fresh, _), (label, cmd, log) = recipe.jobs_to_run(args)
    assert fresh[fresh.index('--observers') + 1:
                 fresh.index('--cfg-options')] == ['minmax']
    assert label == 'cls ssql_seed0 ft0 ptq mse+qdrop mse+brecq:iters=200'
    assert cmd[cmd.index('--finetuned') + 1] == '/x/epoch_15.pth'
    assert cmd[cmd.index('--bits') + 1:cmd.index('--observers')] == [
        '4/4', '2/4']
    assert cmd[cmd.index('--observers') + 1:cmd.index('--cfg-options')] == [
        'mse+qdrop', 'mse+brecq:iters=200']
    folder = osp.join(job, 'ptq-mse_qdrop-mse_brecq_iters_200')
    assert cmd[cmd.index('--work-dir') + 1] == folder
    assert log == folder + '.log'
    # The driver's second pass: PTQ-only jobs, no fine-tuning.
    assert [j[0] for j in recipe.jobs_to_run(args, fine_tune=False)] == [
        label]
    os.makedirs(folder)
    with open(osp.join(folder, 'transfer.json'), 'w') as f:
        json.dump(dict(top1={'mse+qdrop': {'4w4a': 57.0, '2w4a': 40.0},
                             'mse+brecq:iters=200': {'4w4a': 56.0}}), f)
    assert recipe.jobs_to_run(args, fine_tune=False) == []
    scores = recipe.collect(work)['cls']
    assert scores['mse+qdrop']['ssql_seed0_ft0'] == {
        'FP': 60.0, '4w4a': 57.0, '2w4a': 40.0}
    _, summary = recipe.summarize(recipe.collect(work))
    assert summary['cls']['mse+qdrop']['drop']['ssql']['2w4a'][0] == 20.0


def test_calibration_draws_rerun_the_observers_with_other_seeds(recipe,
                                                                tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args(['--work', work, '--backbones',
                              'simsiam_seed0=a.pth', 'ssql_seed0=b.pth',
                              '--ft-seeds', '1', '--stages', 'det',
                              'det-qat', '--observers', 'mse',
                              '--reconstructions', '--calib-draws', '3'])
    for backbone, fp, draw0 in (('simsiam', 0.40, 0.30),
                                ('ssql', 0.50, 0.45)):
        write_job(work, 'det', f'{backbone}_seed0_ft1',
                  {'mse': {'FP': fp, '4w4a': draw0}})
        write_finetune(work, 'det', f'{backbone}_seed0_ft1')
        write_job(work, 'det-qat', f'{backbone}_seed0_ft1',
                  {'qat': {'4w4a': 0.2}})
    jobs = recipe.jobs_to_run(args, fine_tune=False)
    assert [label for label, _, _ in jobs] == [
        'det simsiam_seed0 ft1 draw1', 'det simsiam_seed0 ft1 draw2',
        'det ssql_seed0 ft1 draw1', 'det ssql_seed0 ft1 draw2']
    _, cmd, log = jobs[1]
    job = osp.join(work, 'det', 'simsiam_seed0_ft1')
    assert cmd[cmd.index('--work-dir') + 1] == osp.join(job, 'draw2')
    assert log == osp.join(job, 'draw2') + '.log'
    assert option(cmd, 'randomness.seed') == '201'  # 1 + 100 * 2
    assert cmd[cmd.index('--observers') + 1:cmd.index('--cfg-options')] == [
        'mse']
    assert 'fp' not in cmd
    # Both of SSQL's further draws and one of SimSiam's finish.
    for job_name, draw, value in (('ssql_seed0_ft1', 1, 0.41),
                                  ('ssql_seed0_ft1', 2, 0.43),
                                  ('simsiam_seed0_ft1', 1, 0.36)):
        write_job(work, 'det', osp.join(job_name, f'draw{draw}'),
                  {'mse': {'4w4a': value}})
    assert [j[0] for j in recipe.jobs_to_run(args, fine_tune=False)] == [
        'det simsiam_seed0 ft1 draw2']
    scores = recipe.collect(work)['det']['mse']
    assert scores['ssql_seed0_ft1']['4w4a'] == pytest.approx(43.0)
    assert scores['ssql_seed0_ft1']['FP'] == pytest.approx(50.0)
    assert scores['simsiam_seed0_ft1']['4w4a'] == pytest.approx(33.0)
    spreads = recipe.collect_spreads(work)
    assert spreads['det']['mse']['ssql_seed0_ft1'] == {
        '4w4a': pytest.approx(4.0)}  # FP is not calibrated: no spread
    assert 'det-qat' not in spreads
    text, summary = recipe.summarize(recipe.collect(work), spreads)
    det = summary['det']['mse']
    assert det['draw_spread']['ssql']['4w4a'][0] == pytest.approx(4.0)
    assert det['draw_spread']['simsiam']['4w4a'][0] == pytest.approx(6.0)
    assert det['ssql_minus_simsiam']['4w4a'][0] == pytest.approx(10.0)
    assert 'det, mse: calibration-draw spread' in text
    assert 'calibration-draw spread' not in recipe.summarize(
        recipe.collect(work))[0]


@pytest.mark.parametrize('argv, message', [
    (['--observers', 'mse+qdrop'], 'give reconstructions as'),
    (['--reconstructions', 'mse'], 'write OBSERVER[+]METHOD'),
    (['--reconstructions', 'mse+gptq'], "Unknown PTQ method 'gptq'"),
    (['--reconstruction-bits', '4/x'], 'bit setting'),
    (['--calib-draws', '0'], '--calib-draws must be >= 1'),
])
def test_bad_calibrations_are_refused(recipe, capsys, argv, message):
    with pytest.raises(SystemExit):
        recipe.parse_args(['--backbones', 'random', *argv])
    assert re.search(message, capsys.readouterr().err.splitlines()[-1])


def test_summary_gives_detection_map_in_percent(recipe, tmp_path):
    work = str(tmp_path)
    write_job(work, 'det', 'simsiam_seed0_ft0',
              {'minmax': {'FP': 0.30, '4w4a': 0.25}})
    write_job(work, 'det', 'ssql_seed0_ft0',
              {'minmax': {'FP': 0.32, '4w4a': 0.29}})
    write_job(work, 'seg', 'ssql_seed0_ft0', {'minmax': {'FP': 61.5}})
    write_job(work, 'det-qat', 'ssql_seed0_ft0', {'qat': {'4w4a': 0.27}})
    text, summary = recipe.summarize(recipe.collect(work))
    det = summary['det']['minmax']
    assert det['top1']['ssql']['FP'][0] == pytest.approx(32.0)
    assert det['drop']['ssql']['4w4a'][0] == pytest.approx(3.0)
    assert det['ssql_minus_simsiam']['4w4a'][0] == pytest.approx(4.0)
    assert summary['seg']['minmax']['top1']['ssql']['FP'][0] == 61.5
    assert summary['det-qat']['qat']['top1']['ssql']['4w4a'][0] == \
        pytest.approx(27.0)
    assert 'det, minmax: bbox mAP (%)' in text
    assert 'seg, minmax: mIoU (%)' in text
    assert 'det-qat (quantization-aware fine-tuning): bbox mAP (%)' in text
    assert 'det-qat (quantization-aware fine-tuning): drop' not in text


def write_class_folders(root, classes, per_class=2):
    from PIL import Image
    rng = __import__('numpy').random.default_rng(0)
    for name in classes:
        os.makedirs(osp.join(root, 'test', name))
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), 'uint8')).save(
                osp.join(root, 'test', name, f'{i}.jpg'))


def test_the_paste_set_is_built_once_and_never_silently_resized(recipe,
                                                                tmp_path):
    data, work = str(tmp_path / 'cifar'), str(tmp_path / 'work')
    write_class_folders(data, recipe.PASTE_CLASSES + ('cat', ))
    argv = ['--work', work, '--data', data, '--backbones', 'random',
            '--paste-train', '3', '--paste-val', '2']
    root = recipe.prepare_paste(recipe.parse_args(argv))
    assert root == osp.join(work, 'paste')
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        coco = json.load(f)
    assert len(coco['images']) == 3
    assert [c['name'] for c in coco['categories']] == list(
        recipe.PASTE_CLASSES)  # only the configs' classes
    assert sorted(os.listdir(osp.join(root, 'images', 'val'))) == [
        '00000.jpg', '00001.jpg']
    assert os.listdir(work) == ['paste']  # no partial folder left behind
    stamp = os.stat(osp.join(root, 'annotations', 'train.json')).st_mtime_ns
    assert recipe.prepare_paste(recipe.parse_args(argv)) == root
    assert os.stat(osp.join(root, 'annotations',
                            'train.json')).st_mtime_ns == stamp
    with pytest.raises(ValueError, match='--paste-train/--paste-val'):
        recipe.prepare_paste(recipe.parse_args(
            argv[:-4] + ['--paste-train', '4', '--paste-val', '2']))
    os.remove(osp.join(root, 'paste.json'))
    with pytest.raises(ValueError, match='delete it and rerun'):
        recipe.prepare_paste(recipe.parse_args(argv))


def test_a_failed_paste_build_leaves_nothing_behind(recipe, tmp_path,
                                                    monkeypatch):
    data, work = str(tmp_path / 'cifar'), str(tmp_path / 'work')
    write_class_folders(data, recipe.PASTE_CLASSES)
    real_build = recipe.build_paste_dataset

    def build_then_stop(source, out, *args, **kwargs):
        real_build(source, out, *args, **kwargs)
        assert os.listdir(out)  # images were written
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, 'build_paste_dataset', build_then_stop)
    args = recipe.parse_args(['--work', work, '--data', data, '--backbones',
                              'random', '--paste-train', '2',
                              '--paste-val', '1'])
    with pytest.raises(KeyboardInterrupt):
        recipe.prepare_paste(args)
    assert os.listdir(work) == []
    monkeypatch.setattr(recipe, 'build_paste_dataset', real_build)
    assert recipe.prepare_paste(args) == osp.join(work, 'paste')
