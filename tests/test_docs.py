"""README.md and docs/*.md: no dead link, anchor or path, no broken code.

Checked in every page: each relative link or image points at a file of the
checkout, and each ``#anchor`` at a heading of its page as GitHub names it;
each path the text names under ``tools/``, ``configs/``, ``tests/``,
``ssd_plugin/``, ``runtime/`` or ``requirements/`` exists, in code too; each
```` ```python```` block compiles. Plain text only: no Markdown renderer.
"""
import ast
import re
import unicodedata
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))

FENCE = re.compile(r'^(```+|~~~+)([^\n`]*)\n(.*?)^\1[ \t]*$', re.M | re.S)
# [text](target) and ![alt](target); the target ends at a space or ')'.
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                  r'(?:\s+"[^"]*")?\s*\)')
HEADING = re.compile(r'^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$', re.M)
# A repository path: not preceded by a path character (so '../configs/..',
# 'mmdet::configs/..' and URLs are skipped), ending on a word character.
REPO_PATH = re.compile(
    r'(?<![\w./:-])((?:tools|configs|tests|ssd_plugin|runtime|requirements)'
    r'/[\w./-]*\w)')


def strip_code(text: str) -> str:
    """``text`` without fenced blocks and inline code spans (links and
    headings are not read inside them)."""
    text = FENCE.sub('', text)
    return re.sub(r'(`+)(?:(?!\1).)+?\1', '', text, flags=re.S)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its rendered text lower-cased, every
    character but letters, digits, spaces, '-' and '_' removed (so code
    backticks and emphasis marks go), spaces to '-' (repeats get '-1',
    '-2', ... in :func:`anchors`)."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # link text
    text = re.sub(r'<[^>]+>', '', text)  # inline HTML
    kept = ''.join(ch for ch in text.lower() if ch in ' -_' or
                   unicodedata.category(ch)[0] in 'LN')
    return kept.replace(' ', '-')


def anchors(text: str) -> Set[str]:
    """Every heading id of a page, repeats numbered as GitHub numbers them."""
    seen: Dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub('', text)):
        base = github_anchor(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f'{base}-{count}')
    return result


def check_page(page: Path, text: str, root: Path = ROOT) -> List[str]:
    """What is wrong in ``text``, the content of ``page`` (one line each)."""
    problems = []
    for target in LINK.findall(strip_code(text)):
        if re.match(r'[a-z][a-z0-9+.-]*:', target, re.I):  # http:, mailto:
            continue
        path, _, anchor = target.partition('#')
        linked = (page.parent / path).resolve() if path else page
        if path and not linked.exists():
            problems.append(f'{page.name}: dead link {target}')
        elif anchor and linked.suffix == '.md':
            page_text = text if linked == page else linked.read_text()
            if anchor not in anchors(page_text):
                problems.append(f'{page.name}: no heading #{anchor} in '
                                f'{linked.name}')
    for path in sorted(set(REPO_PATH.findall(text))):
        if not (root / path).exists():
            problems.append(f'{page.name}: {path} does not exist')
    for fence, lang, body in FENCE.findall(text):
        if lang.strip().lower() in ('python', 'py'):
            try:
                compile(body, f'{page.name} python block', 'exec')
            except SyntaxError as error:
                problems.append(f'{page.name}: python block does not '
                                f'compile: {error}')
    return problems


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_page_has_no_dead_link_path_or_code(page):
    assert check_page(page, page.read_text()) == []


def test_readme_is_short_and_links_every_page():
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.splitlines()) <= 200
    linked = {Path(t.partition('#')[0]).name
              for t in LINK.findall(strip_code(readme))}
    orphans = [p.name for p in PAGES[1:] if p.name not in linked]
    assert orphans == [], f'docs pages the README does not link: {orphans}'


def test_the_checker_catches_planted_problems(tmp_path):
    (tmp_path / 'other.md').write_text('# Other page\n\n## A `code` part\n')
    page = tmp_path / 'page.md'
    text = '\n'.join([
        '# Title', '', '## Which crop: `any` or mmdet\'s `all`', '',
        '[fine](other.md#a-code-part) [fine](#which-crop-any-or-mmdets-all)',
        '[fine](https://example.com/x.md) `[not a link](nowhere.md)`',
        '[dead](missing.md) [dead anchor](other.md#no-such-part)',
        '![dead image](pic.png) [dead own anchor](#title-2)',
        'Run tools/no_such_tool.py or `configs/ssd/ssd300_coco.py`.',
        '```python', 'def broken(:', '```',
        '```python', 'x = [..., 1]', '```',
        '```bash', 'python configs/nope.py', '```'])
    problems = check_page(page, text)
    assert problems[:6] == [
        'page.md: dead link missing.md',
        'page.md: no heading #no-such-part in other.md',
        'page.md: dead link pic.png',
        'page.md: no heading #title-2 in page.md',
        'page.md: configs/nope.py does not exist',
        'page.md: tools/no_such_tool.py does not exist',
    ]
    assert len(problems) == 7
    assert problems[6].startswith('page.md: python block does not compile')


@pytest.mark.parametrize('heading,anchor', [
    ('Get started', 'get-started'),
    ("Which crop: Caffe's `'any'` or mmdet's `'all'`",
     'which-crop-caffes-any-or-mmdets-all'),
    ('Deployment: ONNX, ONNX Runtime, OpenVINO, BF16, INT8',
     'deployment-onnx-onnx-runtime-openvino-bf16-int8'),
    ('Training step, float32 against bf16 on the CPU',
     'training-step-float32-against-bf16-on-the-cpu'),
    ("mmdet's `'SSDHead' object has no attribute 'loss_cls'`",
     'mmdets-ssdhead-object-has-no-attribute-loss_cls'),
    ('DDP, on GPUs or the CPU', 'ddp-on-gpus-or-the-cpu'),
])
def test_github_anchor_by_hand(heading, anchor):
    assert github_anchor(heading) == anchor


def test_repeated_headings_are_numbered():
    assert anchors('# A\n## Notes\n### Notes\n```\n# Notes\n```\n') == {
        'a', 'notes', 'notes-1'}


def snippet_constants() -> Dict[str, str]:
    """The backbone snippet that ``tests/test_backbone_swap.py`` runs."""
    tree = ast.parse((ROOT / 'tests' / 'test_backbone_swap.py').read_text())
    return {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and getattr(node.targets[0], 'id', '').startswith('SNIPPET_')}


def test_docs_show_the_code_the_tests_run():
    """The backbone files ``test_backbone_swap.py`` runs are the ones
    train_test.md shows, and README's inference block (run by
    ``test_mmdet_entry_points.py``) is inference.md's first."""
    train_test = (ROOT / 'docs' / 'train_test.md').read_text()
    constants = snippet_constants()
    assert set(constants) == {'SNIPPET_BACKBONE', 'SNIPPET_CONFIG'}
    for name, header in (('SNIPPET_BACKBONE', '# my_project/tinynet.py\n'),
                         ('SNIPPET_CONFIG',
                          '# my_project/ssd300_tinynet_coco.py\n')):
        assert f'```python\n{header}{constants[name]}```' in train_test

    def first_python(text: str) -> str:
        return next(body for _, lang, body in FENCE.findall(text)
                    if lang.strip() == 'python')
    readme = (ROOT / 'README.md').read_text()
    inference = (ROOT / 'docs' / 'inference.md').read_text()
    assert first_python(readme) == first_python(inference)
