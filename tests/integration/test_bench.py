"""Smoke run of every roost-bench scenario with tiny sizes (issue 5).

This keeps the load generator working; the real numbers come from
bench/compare, never from CI. Each scenario must end with one parsable
`result ...` line; where the scenario can lose messages, lost=0.

The binary is $ROOST_BENCH (meson passes it), else build-dev's. Offline
storage and MAM are reported as xfail while roost answers them with
service-unavailable (the scenario then says status=unsupported).
"""

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import new_server, unique_name

ROOT = Path(__file__).resolve().parents[2]
ROOST_BENCH = os.environ.get('ROOST_BENCH') or str(ROOT / 'build-dev' / 'tools' / 'roost-bench')
PASSWORD = 'bench-smoke-pw'
RUN_TIMEOUT = 60   # seconds per roost-bench run; each has --timeout 30

pytestmark = [pytest.mark.roost_only, pytest.mark.timeout(120)]

# users: PREFIX1..PREFIX30; offline and mam get their own ranges
OFFLINE_AT = 10
MAM_AT = 20
NUSERS = 30


@pytest.fixture(scope='module')
def bench():
    """A server of its own (the idle scenario measures its memory), which
    archives every conversation: the bench users have no rosters."""
    if not os.access(ROOST_BENCH, os.X_OK):
        pytest.skip(f'roost-bench not built at {ROOST_BENCH} (set ROOST_BENCH; '
                    "tests/integration/meson.build passes roost_bench.full_path())")
    srv = new_server('bench', sections={'mam': {'default': 'always'}})
    srv.start()
    try:
        prefix = unique_name('bn') + 'n'
        for i in range(1, NUSERS + 1):
            srv.adduser(f'{prefix}{i}@{srv.host}', PASSWORD)
        yield srv, prefix
        srv.stop(check=True)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop(check=False)
        srv.cleanup()


def run_bench(bench, scenario, *args, direct_tls=False, mech='SCRAM-SHA-256'):
    srv, prefix = bench
    cmd = [ROOST_BENCH, '--port', str(srv.tls_port if direct_tls else srv.c2s_port),
           '--domain', srv.host, '--prefix', prefix, '--password', PASSWORD,
           '--mech', mech, '--server-pid', str(srv.proc.pid), '--server-name', 'roost',
           '--timeout', '30', '--sources', '2', '-v', *args]
    if direct_tls:
        cmd.append('--tls')
    cmd.append(scenario)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    lines = [l for l in p.stdout.splitlines() if l.startswith('result ')]
    assert len(lines) == 1, f'no single summary line:\n{p.stdout}\n{p.stderr[-3000:]}'
    res = dict(kv.split('=', 1) for kv in lines[0].split()[1:])
    assert res['scenario'] == scenario
    human = [l for l in p.stdout.splitlines() if l and not l.startswith('result ')]
    assert human and human[0].startswith(scenario + ':'), p.stdout
    res['_rc'] = p.returncode
    res['_out'] = p.stdout + p.stderr[-3000:]
    return res


def number(res, key):
    return float(res[key])


@pytest.mark.parametrize('direct_tls,mech', [(False, 'SCRAM-SHA-256'), (True, 'SCRAM-SHA-1')],
                         ids=['starttls-sha256', 'directtls-sha1'])
def test_login(bench, direct_tls, mech):
    res = run_bench(bench, 'login', '-n', '5', '--users', '5', '--concurrency', '3',
                    direct_tls=direct_tls, mech=mech)
    assert res['status'] == 'ok', res['_out']
    assert res['ok'] == '5' and res['lost'] == '0'
    assert number(res, 'logins_per_s') > 0
    assert number(res, 'p99_ms') >= number(res, 'p50_ms') > 0
    assert res['server_cpu'] != 'na'     # read from /proc/PID/stat
    assert res['_rc'] == 0


def test_idle(bench):
    res = run_bench(bench, 'idle', '-n', '4', '--hold', '0.5')
    assert res['status'] == 'ok', res['_out']
    assert res['online'] == '4' and res['lost'] == '0' and res['dropped'] == '0'
    assert res['ping_ok'] == res['ping_sent'] == '4'
    number(res, 'kib_per_conn')          # measured from /proc/PID/status
    assert res['_rc'] == 0


def test_chat(bench):
    res = run_bench(bench, 'chat', '--pairs', '2', '--messages', '20', '--window', '5')
    assert res['status'] == 'ok', res['_out']
    assert res['sent'] == res['delivered'] == '40'
    assert res['lost'] == '0' and res['dup'] == '0' and res['errors'] == '0'
    assert number(res, 'msgs_per_s') > 0
    assert res['_rc'] == 0


def test_chat_back_pressure_loses_nothing():
    """[mam] backlog_pause at its minimum: the archive's store falls behind
    at once and session streams stop being read until its batch is done
    (src/xmpp/c2s_intake.c). Every message must still arrive once, and be
    in both archives."""
    if not os.access(ROOST_BENCH, os.X_OK):
        pytest.skip(f'roost-bench not built at {ROOST_BENCH}')
    srv = new_server('bench-pause', sections={'mam': {'default': 'always',
                                                       'backlog_pause': '64'}})
    srv.start()
    try:
        prefix = unique_name('bp') + 'n'
        for i in range(1, 9):
            srv.adduser(f'{prefix}{i}@{srv.host}', PASSWORD)
        res = run_bench((srv, prefix), 'chat', '--pairs', '4', '--messages', '1500',
                        '--window', '50')
        assert res['status'] == 'ok', res['_out']
        assert res['sent'] == res['delivered'] == '6000'
        assert res['lost'] == '0' and res['dup'] == '0' and res['errors'] == '0'
        # The paused path ran (else this test proves nothing).
        srv.wait_log('clients are read again when its batch is done')
        srv.stop(check=True)
        db = sqlite3.connect(srv.data_dir / 'roost.db')
        try:
            (archived,) = db.execute('SELECT count(*) FROM archive').fetchone()
        finally:
            db.close()
        assert archived == 2 * 6000
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop(check=False)
        srv.cleanup()


def test_offline_back_pressure_loses_nothing():
    """[offline] backlog_pause at its minimum, archiving off: the offline
    store falls behind at once and session streams stop being read until
    its batch is done. Every message must still be stored once and
    retrieved once."""
    if not os.access(ROOST_BENCH, os.X_OK):
        pytest.skip(f'roost-bench not built at {ROOST_BENCH}')
    srv = new_server('offline-pause', sections={
        'mam': {'enabled': 'false'},
        'offline': {'backlog_pause': '64', 'max_messages': '0', 'max_bytes': '0'}})
    srv.start()
    try:
        prefix = unique_name('op') + 'n'
        for i in range(1, 9):   # 4 senders, then 4 recipients
            srv.adduser(f'{prefix}{i}@{srv.host}', PASSWORD)
        res = run_bench((srv, prefix), 'offline', '-n', '6000', '--users', '4',
                        '--senders', '4', '--window', '500')
        assert res['status'] == 'ok', res['_out']
        assert res['retrieved'] == '6000'
        assert res['lost'] == '0' and res['dup'] == '0' and res['errors'] == '0'
        # The paused path ran (else this test proves nothing).
        srv.wait_log('offline: the store is')
        srv.stop(check=True)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop(check=False)
        srv.cleanup()


def test_offline(bench):
    res = run_bench(bench, 'offline', '-n', '10', '--users', '2', '--senders', '1',
                    '--offset', str(OFFLINE_AT))
    if res['status'] == 'unsupported':
        assert res['error_condition'] == 'service-unavailable' and res['_rc'] == 3
        pytest.xfail('roost bounces messages to offline users with service-unavailable '
                     'until the sealed offline store lands (issue 3)')
    assert res['status'] == 'ok', res['_out']
    assert res['retrieved'] == '10' and res['lost'] == '0' and res['dup'] == '0'
    assert res['delayed'] == '10'
    assert res['_rc'] == 0


def test_mam(bench):
    res = run_bench(bench, 'mam', '-n', '12', '--page', '5', '--offset', str(MAM_AT))
    if res['status'] == 'unsupported':
        assert res['_rc'] == 3
        pytest.xfail('roost has no message archive (XEP-0313) yet: '
                     f'the query is answered <{res["error_condition"]}/>')
    assert res['status'] == 'ok', res['_out']
    assert res['retrieved'] == '12' and res['lost'] == '0' and res['dup'] == '0'
    assert res['_rc'] == 0


def test_register_reports_cleanly(bench):
    # roost offers no in-band registration: the scenario must say so and
    # stop, not hang (bench users are made with roostctl).
    res = run_bench(bench, 'register', '-n', '2')
    assert res['status'] in ('ok', 'unsupported'), res['_out']
