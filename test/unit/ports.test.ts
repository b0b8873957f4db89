import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { portReservations, reservePort } from '../../infra/ports';

/** Ports from the top of the picks' range, which random picks seldom reach in a test run. */
const port = (n: number) => 29_990 + n;
const file = (n: number) => join(portReservations, String(port(n)));

describe('port reservations, shared by the processes of one machine', () => {
  it('takes a free port once, for this process', () => {
    rmSync(file(0), { force: true });
    assert.equal(reservePort(port(0)), true);
    assert.equal(readFileSync(file(0), 'utf8'), String(process.pid));
    assert.equal(reservePort(port(0)), false, 'not twice');
  });

  it('refuses a port a live process holds, and takes one whose process has ended', () => {
    // pid 1 lives as long as the machine; a pid past the kernel's maximum has never run.
    writeFileSync(file(1), '1');
    assert.equal(reservePort(port(1)), false);
    writeFileSync(file(2), '4194305');
    assert.equal(reservePort(port(2)), true);
    assert.equal(readFileSync(file(2), 'utf8'), String(process.pid));
    rmSync(file(1), { force: true });
  });

  it('counts an empty reservation as one being written, not as free', () => {
    writeFileSync(file(3), '');
    assert.equal(reservePort(port(3)), false);
    rmSync(file(3), { force: true });
  });
});
