"""ssd_plugin's runtime: mmdet's, in our scope, counting iterations (Caffe).

``default_scope`` makes the runner look our names up first (mmdet's are the
fallback); the model and dataset bases also carry ``_scope_`` so that they
build in our scope from mmdet's own entry points (``DetInferencer``,
``mim run mmdet ...``), whatever scope those start in.
"""
_base_ = ['mmdet::_base_/default_runtime.py']

default_scope = 'ssd_plugin'
custom_imports = dict(imports=['ssd_plugin'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
# Stop early and say why: a model/dataset class-count mismatch and a total
# batch over several GPUs that is not the recipe's (before the first
# iteration), a non-finite loss (with the last finite ones, on all ranks at
# once); and show a progress bar while evaluating.
custom_hooks = [
    dict(type='NumClassesCheckHook'),
    dict(type='DistributedBatchCheckHook'),
    dict(type='FiniteLossCheckHook'),
    dict(type='EvalProgressBarHook'),
]
