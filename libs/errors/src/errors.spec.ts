import { CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError, throwIfAborted } from './index';

describe('domain errors', () => {
  it('name the invalid field and say why, in the message users see', () => {
    const error = new InvalidArgumentError('spec.loss.wdro.delta', 'must be in (0, 0.5)');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('InvalidArgumentError');
    expect(error.field).toBe('spec.loss.wdro.delta');
    expect(error.reason).toBe('must be in (0, 0.5)');
    expect(error.message).toBe('invalid spec.loss.wdro.delta: must be in (0, 0.5)');
  });

  it('keep their message as given', () => {
    expect(new NotFoundError("run_id: no run 'x'").message).toBe("run_id: no run 'x'");
    expect(new FailedPreconditionError("run 'x' already succeeded").name).toBe('FailedPreconditionError');
    expect(new CancelledError().message).toBe('cancelled');
  });

  it('throwIfAborted throws CancelledError only once the signal has fired, with the reason’s message', () => {
    const controller = new AbortController();
    expect(() => throwIfAborted(undefined)).not.toThrow();
    expect(() => throwIfAborted(controller.signal)).not.toThrow();
    controller.abort(new Error('deadline passed'));
    expect(() => throwIfAborted(controller.signal)).toThrow(new CancelledError('deadline passed'));
    const plain = new AbortController();
    plain.abort('gone');
    expect(() => throwIfAborted(plain.signal)).toThrow(new CancelledError('cancelled'));
  });
});
