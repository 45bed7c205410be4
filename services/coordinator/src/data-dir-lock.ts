import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';

/** Thrown when another coordinator process serves the data directory. */
export class DataDirLockedError extends Error {}

/**
 * One coordinator per data directory (issue 12: two coordinators on one DATA_DIR resumed the same run twice and
 * ended it FAILED "database is locked"). The lock is an open SQLite EXCLUSIVE transaction on
 * $DATA_DIR/coordinator/coordinator.lock: SQLite takes it with a POSIX lock, which the operating system releases when
 * the process exits in any way (SIGKILL included), so a dead coordinator never leaves a stale lock behind. Who holds
 * it is written beside it (coordinator.lock.json), for the message a second coordinator prints.
 */
export class DataDirLock {
  private constructor(
    private readonly db: Database.Database,
    private readonly infoFile: string,
  ) {}

  static acquire(dataDir: string): DataDirLock {
    const dir = path.join(dataDir, 'coordinator');
    fs.mkdirSync(dir, { recursive: true });
    const lockFile = path.join(dir, 'coordinator.lock');
    const infoFile = `${lockFile}.json`;
    const db = new Database(lockFile, { timeout: 0 });
    try {
      db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      throw new DataDirLockedError(
        `another coordinator serves ${path.resolve(dataDir)}${describeHolder(infoFile)}; ` +
          'run one coordinator per DATA_DIR (stop the other, or give this one its own DATA_DIR)',
      );
    }
    const holder = { pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
    fs.writeFileSync(infoFile, JSON.stringify(holder) + '\n');
    return new DataDirLock(db, infoFile);
  }

  release(): void {
    if (!this.db.open) return;
    fs.rmSync(this.infoFile, { force: true });
    this.db.exec('ROLLBACK');
    this.db.close();
  }
}

function describeHolder(infoFile: string): string {
  try {
    const holder = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { pid?: number; host?: string; started_at?: string };
    return ` (pid ${holder.pid} on ${holder.host}, since ${holder.started_at})`;
  } catch {
    return '';
  }
}
