"""Caffe SSD's solver (``ssd_pascal.py``).

Iteration-based, as Caffe counts it: the length and LR steps stay the
paper's whatever dataset wrappers (mmdet's ``RepeatDataset``) make an epoch.
SGD, LR 1e-3 at a total batch of 32, momentum 0.9, weight decay 5e-4,
biases at twice the LR without decay (Caffe's ``lr_mult: 2, decay_mult:
0``); 120k iterations with LR x0.1 at 2/3 and 5/6 (80k, 100k). The linear
warm-up over the first 500 iterations is mmdet's (Caffe has none); it eases
the start from ImageNet weights.

``batch_size`` is the recipe's total over all GPUs; the loader's is per
process, right for one GPU. On k GPUs pass ``--cfg-options
train_dataloader.batch_size=32/k`` (4 on 8 GPUs) for the recipe, or
``--auto-scale-lr`` for k x 32 at k x the LR (the iterations then cover k x
the epochs); ``DistributedBatchCheckHook`` refuses anything else (docs/gpu.md).
"""
max_iters = 120000
batch_size = 32  # Caffe's total; the data recipes and auto_scale_lr use it
# The data recipes' training loader: iterations from an endless sampler; no
# aspect-ratio grouping, as SSD's inputs have one fixed size.
train_loader = dict(
    batch_size=batch_size,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 2 // 3, max_iters * 5 // 6], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=batch_size)

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
