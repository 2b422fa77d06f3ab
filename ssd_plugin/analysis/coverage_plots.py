"""The PNGs of ``analyze_default_boxes.py`` (matplotlib, no display):
the numbers of :func:`.default_boxes.coverage_report` drawn."""
from typing import Sequence

import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ssd_plugin.analysis.coverage import fmt


def _figure(width: float, height: float):
    """A figure and its axes outside pyplot: no display, and the importing
    process's matplotlib backend left as it is."""
    fig = Figure(figsize=(width, height), dpi=80)
    return fig, fig.subplots()


def plot_shapes(gt: torch.Tensor, level_priors: Sequence[torch.Tensor],
                num_base: Sequence[int], path: str,
                title: str = 'Ground truth and default-box shapes') -> None:
    """Ground-truth width/height (log axes), each level's box shapes over.

    Args:
        gt (Tensor): ``(G, 4)`` ground truth at the input.
        level_priors (Sequence[Tensor]): ``(P_l, 4)`` boxes per level.
        num_base (Sequence[int]): Boxes per location of each level.
        path (str): The PNG written.
        title (str): The plot's title.
    """
    fig, ax = _figure(5, 4.5)
    wh = gt[:, 2:] - gt[:, :2]
    ax.scatter(wh[:, 0], wh[:, 1], s=4, c='0.6', alpha=0.5,
               label='ground truth', rasterized=True)
    colours = colormaps['viridis']
    for level, (priors, count) in enumerate(zip(level_priors, num_base)):
        shapes = priors[:count, 2:] - priors[:count, :2]  # one location
        ax.scatter(shapes[:, 0], shapes[:, 1], s=40, marker='x',
                   color=colours(level / max(len(num_base) - 1, 1)),
                   label=f'level {level} default boxes')
    ax.set(xscale='log', yscale='log', xlabel='width at input (px)',
           ylabel='height at input (px)', title=title)
    ax.legend(fontsize=7, loc='upper left')
    _save(fig, path)


def plot_best_iou(report: dict, path: str) -> None:
    """Histogram of each ground truth's best IoU, threshold marked."""
    fig, ax = _figure(5, 3.5)
    ax.hist([g['best_iou'] for g in report['per_gt']], bins=40,
            range=(0, 1), color='tab:blue')
    ax.axvline(report['pos_iou_thr'], color='tab:red', linestyle='--',
               label=f'pos_iou_thr {report["pos_iou_thr"]}')
    ax.set(xlabel='best IoU with any default box', ylabel='ground truth',
           title=f'Best IoU (recall {fmt(report["recall"])})')
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_matches(report: dict, path: str) -> None:
    """Matched (ground truth, default box) pairs per level."""
    levels = report['recall_per_level']
    fig, ax = _figure(5, 3.5)
    names = [f'{k}\n{v["featmap"][0]}x{v["featmap"][1]}'
             for k, v in levels.items()]
    ax.bar(names, [v['matched_pairs'] for v in levels.values()],
           color='tab:green')
    ax.set(xlabel='level (feature map)', ylabel='matched pairs',
           title='Matches per level (IoU >= threshold)')
    _save(fig, path)


def _save(fig: Figure, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path)
