// progress(message, fraction?) for execute code: checks the arguments and
// hands them to the host sink, which rate-limits, counts and cuts them.
// Returns whether the report was passed on. Evaluated as a prelude.
(function (sink) {
  'use strict';
  return Object.freeze(function progress(message, fraction) {
    if (typeof message !== 'string') {
      throw new TypeError('progress(message, fraction?) takes a string message, e.g. progress(`page ${i} of ${n}`, i / n)');
    }
    if (fraction !== undefined && (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1))) {
      throw new RangeError('progress(message, fraction?): fraction must be a number from 0 to 1, or left out');
    }
    // The host keeps 200 characters; no need to copy more across.
    return sink(message.length > 400 ? message.slice(0, 400) : message, fraction === undefined ? -1 : fraction);
  });
})
