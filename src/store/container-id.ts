import { KataError } from '../util/errors.js';

/** runc's id rule: letters, digits, `_ + - .`, never `.` or `..`. */
const idPattern = /^[\w+\-.]+$/;

export function validateId(id: string, what = 'container id'): string {
  if (id.length === 0) throw new KataError('INVALID_ID', `${what} must not be empty`);
  if (id.length > 1024) throw new KataError('INVALID_ID', `${what} is longer than 1024 characters`);
  if (!idPattern.test(id) || id === '.' || id === '..') {
    throw new KataError('INVALID_ID', `invalid ${what} ${JSON.stringify(id)}: use letters, digits, _ + - . only`);
  }
  return id;
}
