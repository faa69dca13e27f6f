"""The "Async Downloads" option group: --help, config files, params, bad values, -v, start-up cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ytdlp_support import hermetic_env, output, require_hook, run_python, run_ytdlp

pytestmark = pytest.mark.usefixtures('_hook')

OPTIONS = ['--async-downloads', '--no-async-downloads', '--concurrent-downloads N', '--chunk-size SIZE',
           '--async-timeout SECONDS', '--async-retry-delay SECONDS', '--async-max-retries N']
KEYS = ['async_downloads', 'concurrent_downloads', 'async_chunk_size', 'async_timeout',
        'async_retry_delay', 'async_max_retries']


@pytest.fixture
def _hook() -> None:
    require_hook()


def parsed_params(tmp_path: Path, args: list[str]) -> dict[str, object]:
    """ydl_opts from yt-dlp's own parse_options (the function its main() calls)."""
    code = (
        'import json, sys, yt_dlp\n'
        f'res = yt_dlp.parse_options({args!r})\n'
        f'print(json.dumps({{k: res.ydl_opts.get(k, "MISSING") for k in {KEYS!r}}}))\n')
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, output(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_lists_the_group(tmp_path: Path) -> None:
    proc = run_ytdlp(['--help'], tmp_path)
    assert proc.returncode == 0, output(proc)
    group = proc.stdout.split('Async Downloads:', 1)
    assert len(group) == 2, 'no "Async Downloads" group in --help'
    section = group[1].split('\n\n  ', 2)[:2]
    text = '\n'.join(section)
    for option in OPTIONS:
        assert option in text, f'{option} missing from the group'
    assert 'async' in re.search(r'Currently supports native, ([^.]*)\.', proc.stdout.replace('\n', ' ')
                                .replace('  ', ' ')).group(1)


def test_defaults_reach_params(tmp_path: Path) -> None:
    assert parsed_params(tmp_path, ['http://127.0.0.1/x']) == {
        'async_downloads': True, 'concurrent_downloads': 5, 'async_chunk_size': 1024 * 1024,
        'async_timeout': None, 'async_retry_delay': None, 'async_max_retries': None}


def test_command_line_values_reach_params(tmp_path: Path) -> None:
    params = parsed_params(tmp_path, [
        '--no-async-downloads', '--concurrent-downloads', '9', '--chunk-size', '512K',
        '--async-timeout', '2.5', '--async-retry-delay', '0', '--async-max-retries', '4', 'http://127.0.0.1/x'])
    assert params == {
        'async_downloads': False, 'concurrent_downloads': 9, 'async_chunk_size': 512 * 1024,
        'async_timeout': 2.5, 'async_retry_delay': 0.0, 'async_max_retries': 4}


@pytest.mark.parametrize(('text', 'size'), [('512K', 524288), ('10M', 10485760), ('1.5M', 1572864), ('16384', 16384)])
def test_chunk_size_units(tmp_path: Path, text: str, size: int) -> None:
    assert parsed_params(tmp_path, ['--chunk-size', text, 'u'])['async_chunk_size'] == size


def test_config_file_values_reach_params(tmp_path: Path) -> None:
    config = tmp_path / 'async.conf'
    config.write_text('# yt-dlp config\n--no-async-downloads\n--concurrent-downloads 3\n--chunk-size 10M\n'
                      '--async-timeout 7\n--async-retry-delay 0.5\n--async-max-retries 2\n')
    params = parsed_params(tmp_path, ['--config-locations', str(config), 'http://127.0.0.1/x'])
    assert params == {
        'async_downloads': False, 'concurrent_downloads': 3, 'async_chunk_size': 10 * 1024 * 1024,
        'async_timeout': 7.0, 'async_retry_delay': 0.5, 'async_max_retries': 2}


def test_user_config_file_is_read_by_the_cli(tmp_path: Path, fault_server) -> None:
    """The real CLI reading $XDG_CONFIG_HOME/yt-dlp/config: --no-async-downloads there picks HttpFD."""
    home = tmp_path / '.home'
    (home / 'config' / 'yt-dlp').mkdir(parents=True)
    (home / 'config' / 'yt-dlp' / 'config').write_text('--no-async-downloads\n--concurrent-downloads 2\n')
    proc = run_ytdlp(['-v', '-o', 'out.%(ext)s', fault_server.data_url(20000, 'mp4')], tmp_path)
    assert proc.returncode == 0, output(proc)
    assert "User config" in proc.stderr and '--no-async-downloads' in proc.stderr
    assert '[debug] Invoking http downloader on' in proc.stderr, output(proc)
    assert '[async] Async downloads: off' in proc.stderr


BAD_VALUES = [
    ('--concurrent-downloads', '0'),
    ('--concurrent-downloads', 'many'),
    ('--chunk-size', '12Q'),
    ('--chunk-size', '0'),
    ('--async-timeout', '-1'),
    ('--async-timeout', 'nan'),
    ('--async-retry-delay', 'soon'),
    ('--async-max-retries', '-3'),
    ('--async-max-retries', '1.5'),
]


@pytest.mark.parametrize(('option', 'value'), BAD_VALUES)
def test_bad_value_is_a_usage_error(tmp_path: Path, option: str, value: str) -> None:
    proc = run_ytdlp([option, value, 'http://127.0.0.1:9/x'], tmp_path)
    assert proc.returncode == 2, output(proc)
    # prog is "yt-dlp" for the console script, "__main__.py" for python -m yt_dlp (yt-dlp's own behaviour)
    assert re.search(rf'(yt-dlp|__main__\.py): error: option {option}: invalid value {re.escape(repr(value))}',
                     proc.stderr), output(proc)
    assert 'Traceback' not in proc.stderr


def test_bad_value_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name('yt-dlp')
    if not script.exists():
        pytest.skip(f'no yt-dlp console script next to {sys.executable}')
    proc = subprocess.run([str(script), '--chunk-size', 'huge', 'http://127.0.0.1:9/x'], capture_output=True,
                          text=True, timeout=60, env=hermetic_env(tmp_path / '.home'))
    assert proc.returncode == 2, output(proc)
    assert "yt-dlp: error: option --chunk-size: invalid value 'huge'" in proc.stderr, output(proc)


def test_bad_value_in_config_file_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / 'bad.conf'
    config.write_text('--concurrent-downloads -2\n')
    proc = run_ytdlp(['--config-locations', str(config), 'http://127.0.0.1:9/x'], tmp_path)
    assert proc.returncode == 2, output(proc)
    assert "error: option --concurrent-downloads: invalid value '-2'" in proc.stderr, output(proc)


def test_missing_value_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_ytdlp(['http://127.0.0.1:9/x', '--chunk-size'], tmp_path)
    assert proc.returncode == 2, output(proc)
    assert 'error: --chunk-size option requires 1 argument' in proc.stderr, output(proc)


def test_verbose_states_on_versions(tmp_path: Path) -> None:
    import yt_dlp_async
    proc = run_ytdlp(['-v', '--simulate', 'http://127.0.0.1:9/x.mp4'], tmp_path)
    line = next((l for l in proc.stderr.splitlines() if '[async] Async downloads:' in l), None)
    assert line is not None, output(proc)
    assert line.startswith('[debug] [async] Async downloads: on;'), line
    assert f'yt-dlp-async {yt_dlp_async.__version__}' in line
    assert yt_dlp_async.curl_version().split()[0] in line  # e.g. libcurl/8.5.0


def test_verbose_states_off(tmp_path: Path) -> None:
    proc = run_ytdlp(['-v', '--no-async-downloads', '--simulate', 'http://127.0.0.1:9/x.mp4'], tmp_path)
    assert '[debug] [async] Async downloads: off;' in proc.stderr, output(proc)


def test_disable_env_removes_everything(tmp_path: Path) -> None:
    proc = run_ytdlp(['--help'], tmp_path, disable_hook=True)
    assert proc.returncode == 0 and 'Async Downloads:' not in proc.stdout
    proc = run_ytdlp(['--async-downloads', 'http://127.0.0.1:9/x'], tmp_path, disable_hook=True)
    assert proc.returncode == 2 and 'no such option: --async-downloads' in proc.stderr, output(proc)


def test_hook_imports_nothing_at_start_up(tmp_path: Path) -> None:
    code = ('import sys; print(sorted(m for m in sys.modules if m.startswith(("yt_dlp", "yt_dlp_async"))), '
            'sum(type(f).__name__ == "YtdlpPatchFinder" for f in sys.meta_path))')
    proc = run_python(code, tmp_path)
    assert proc.stdout.split() == ["['yt_dlp_async_hook']", '1'], output(proc)


def _hook_import_us(env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'pass'], capture_output=True, text=True,
                          env=env, timeout=60)
    for line in proc.stderr.splitlines():
        parts = [p.strip() for p in line.split('|')]
        if len(parts) == 3 and parts[2] == 'yt_dlp_async_hook':
            return int(parts[1])  # cumulative microseconds, the hook and everything it imported
    raise AssertionError(f'yt_dlp_async_hook not imported at start-up:\n{proc.stderr[-3000:]}')


def test_hook_start_up_cost_under_5ms(tmp_path: Path) -> None:
    env = hermetic_env(tmp_path / '.home')
    best = min(_hook_import_us(env) for _ in range(5))
    assert best < 5000, f'the .pth hook costs {best} us at start-up'


def test_hook_start_up_imports_nothing_else(tmp_path: Path) -> None:
    """`python -c pass` with the hook on imports the same modules as with it off (the .pth loads the
    hook module either way): nothing of yt-dlp, of the plugin or of the C extension.

    (Its cost in time is measured by the benchmarks, not asserted here.)
    """
    def imported(env: dict[str, str]) -> set[str]:
        proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'pass'], env=env, check=True,
                              capture_output=True, text=True)
        return {line.rsplit('|', 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith('import time:')}

    on = imported(hermetic_env(tmp_path / '.home'))
    off = imported(hermetic_env(tmp_path / '.home', disable_hook=True))
    assert 'yt_dlp_async_hook' in on
    assert on == off, sorted(on ^ off)
    assert [name for name in on if name.startswith('yt_dlp')] == ['yt_dlp_async_hook']
