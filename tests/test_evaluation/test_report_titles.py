"""The transfer report names the metric it reports."""
from ssql_mm.evaluation import SweepResult, format_table


def result_with(meta):
    return SweepResult(['minmax'], ['FP', '4w4a'],
                       top1={'minmax': {'FP': 0.41, '4w4a': 0.39}}, meta=meta)


def test_a_detection_metric_is_not_called_top1():
    table = format_table(result_with(dict(metric='coco/bbox_mAP')))
    assert table.splitlines()[0] == '**fine-tuned coco/bbox_mAP**'
    assert '| 4w4a | 0.39 |' in table


def test_classification_keeps_the_top1_title():
    for meta in ({}, dict(metric='accuracy/top1')):
        assert format_table(result_with(meta)).startswith(
            '**fine-tuned top-1 (%)**')
