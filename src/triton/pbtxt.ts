// Protocol Buffers text format (what Triton's config.pbtxt is), driven by a protobufjs message type: the writer
// knows which fields are enums, strings or messages from the schema, and the parser rejects anything the schema
// or the text-format grammar does not allow (unknown fields, bad enum names, a singular field given twice).
import protobuf from 'protobufjs';

type Obj = Record<string, unknown>;

const INT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);
const FLOAT_TYPES = new Set(['float', 'double']);

/** Double-quoted text-format string: C-style escapes, and octal bytes for anything outside printable ASCII. */
function quote(s: string): string {
  const esc: Record<number, string> = { 10: '\\n', 13: '\\r', 9: '\\t', 34: '\\"', 92: '\\\\' };
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (esc[b]) out += esc[b];
    else if (b < 0x20 || b >= 0x7f) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out + '"';
}

function scalarText(field: protobuf.FieldBase, value: unknown): string {
  const rt = field.resolve().resolvedType;
  if (rt instanceof protobuf.Enum) {
    const name = typeof value === 'number' ? rt.valuesById[value] : String(value);
    if (name === undefined || rt.values[name] === undefined) throw new Error(`${field.fullName}: ${String(value)} is not a ${rt.name} value`);
    return name;
  }
  if (field.type === 'string') return quote(String(value));
  if (field.type === 'bool') return value ? 'true' : 'false';
  if (INT_TYPES.has(field.type)) {
    if (typeof value !== 'number' && typeof value !== 'bigint') throw new Error(`${field.fullName}: expected an integer, got ${String(value)}`);
    if (typeof value === 'number' && !Number.isInteger(value)) throw new Error(`${field.fullName}: expected an integer, got ${value}`);
    return String(value);
  }
  if (FLOAT_TYPES.has(field.type)) return String(Number(value));
  throw new Error(`${field.fullName}: type ${field.type} is not supported by this text-format writer`);
}

function writeMessage(type: protobuf.Type, obj: Obj, indent: string, lines: string[]): void {
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    if (value === undefined || value === null) continue;
    const rt = field.resolve().resolvedType;
    const isMessage = rt instanceof protobuf.Type;
    if (field instanceof protobuf.MapField) {
      // A map is a repeated entry message { key: K value: V }, one block per key (what Triton writes).
      if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${field.fullName} is a map: expected an object`);
      const keyField = new protobuf.Field('key', 1, field.keyType);
      for (const [k, v] of Object.entries(value as Obj)) {
        lines.push(`${indent}${field.name} {`);
        lines.push(`${indent}  key: ${scalarText(keyField, INT_TYPES.has(field.keyType) ? Number(k) : field.keyType === 'bool' ? k === 'true' : k)}`);
        if (isMessage) {
          lines.push(`${indent}  value {`);
          writeMessage(rt, v as Obj, indent + '    ', lines);
          lines.push(`${indent}  }`);
        } else lines.push(`${indent}  value: ${scalarText(field, v)}`);
        lines.push(`${indent}}`);
      }
    } else if (field.repeated) {
      const list = value as unknown[];
      if (!Array.isArray(list)) throw new Error(`${field.fullName} is repeated: expected an array`);
      if (list.length === 0) continue;
      if (isMessage) {
        lines.push(`${indent}${field.name} [`);
        list.forEach((item, i) => {
          lines.push(`${indent}  {`);
          writeMessage(rt, item as Obj, indent + '    ', lines);
          lines.push(`${indent}  }${i < list.length - 1 ? ',' : ''}`);
        });
        lines.push(`${indent}]`);
      } else {
        lines.push(`${indent}${field.name}: [ ${list.map((v) => scalarText(field, v)).join(', ')} ]`);
      }
    } else if (isMessage) {
      lines.push(`${indent}${field.name} {`);
      writeMessage(rt, value as Obj, indent + '  ', lines);
      lines.push(`${indent}}`);
    } else {
      lines.push(`${indent}${field.name}: ${scalarText(field, value)}`);
    }
  }
  for (const key of Object.keys(obj)) {
    if (!type.fields[key]) throw new Error(`${type.fullName} has no field "${key}"`);
  }
}

/** Serialise a plain object (field names as in the .proto, enums by name) as text format. */
export function toTextFormat(type: protobuf.Type, obj: Obj, header?: string): string {
  const lines: string[] = header ? header.split('\n').map((l) => `# ${l}`.trimEnd()) : [];
  writeMessage(type, obj, '', lines);
  return lines.join('\n') + '\n';
}

// ---- parser ----

interface Token {
  kind: 'ident' | 'string' | 'number' | 'punct';
  text: string;
  value?: string;
  line: number;
}

export class TextFormatError extends Error {
  override name = 'TextFormatError';
}

function unescape(body: string, line: number): string {
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const n = body[++i];
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };
    if (n !== undefined && simple[n] !== undefined) bytes.push(simple[n]!);
    else if (n !== undefined && /[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(body.slice(i))![0];
      bytes.push(parseInt(m, 8));
      i += m.length - 1;
    } else if (n === 'x') {
      const m = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 1));
      if (!m) throw new TextFormatError(`line ${line}: bad \\x escape`);
      bytes.push(parseInt(m[0], 16));
      i += m[0].length;
    } else throw new TextFormatError(`line ${line}: unknown escape \\${n ?? ''}`);
  }
  return Buffer.from(bytes).toString('utf8');
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s+|#[^\n]*|([A-Za-z_][A-Za-z0-9_.]*)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|inf|nan))|([{}[\]<>:,;])|(.)/gy;
  let line = 1;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const [all, ident, str, num, punct, bad] = m;
    if (bad !== undefined) throw new TextFormatError(`line ${line}: unexpected character ${JSON.stringify(bad)}`);
    if (ident !== undefined) tokens.push({ kind: 'ident', text: ident, line });
    else if (str !== undefined) tokens.push({ kind: 'string', text: str, value: unescape(str.slice(1, -1), line), line });
    else if (num !== undefined) tokens.push({ kind: 'number', text: num, line });
    else if (punct !== undefined) tokens.push({ kind: 'punct', text: punct, line });
    line += (all.match(/\n/g) ?? []).length;
  }
  return tokens;
}

/** Parse text format into a plain object shaped for `type.fromObject()` (enums by name, repeated fields as arrays). */
export function parseTextFormat(type: protobuf.Type, text: string): Obj {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const fail = (msg: string): never => {
    const t = tokens[Math.min(pos, tokens.length - 1)];
    throw new TextFormatError(`${t ? `line ${t.line}: ` : ''}${msg}`);
  };
  const next = () => tokens[pos++] ?? fail('unexpected end of input');
  const accept = (p: string) => (peek()?.kind === 'punct' && peek()!.text === p ? (pos++, true) : false);
  const expect = (p: string) => accept(p) || fail(`expected "${p}" but found "${peek()?.text ?? 'end of input'}"`);

  const parseScalar = (field: protobuf.FieldBase): unknown => {
    const rt = field.resolve().resolvedType;
    const t = next();
    if (rt instanceof protobuf.Enum) {
      if (t.kind === 'ident') {
        if (rt.values[t.text] === undefined) fail(`${field.name}: "${t.text}" is not a ${rt.name} value (${Object.keys(rt.values).join(', ')})`);
        return t.text;
      }
      if (t.kind === 'number' && /^-?\d+$/.test(t.text)) {
        const name = rt.valuesById[Number(t.text)];
        return name ?? fail(`${field.name}: ${t.text} is not a ${rt.name} value`);
      }
      return fail(`${field.name}: expected a ${rt.name} value, found ${t.text}`);
    }
    if (field.type === 'string' || field.type === 'bytes') {
      if (t.kind !== 'string') fail(`${field.name}: expected a quoted string, found ${t.text}`);
      let s = t.value!;
      while (peek()?.kind === 'string') s += next().value!; // adjacent literals concatenate
      return s;
    }
    if (field.type === 'bool') {
      if (['true', 'True', 't', '1'].includes(t.text)) return true;
      if (['false', 'False', 'f', '0'].includes(t.text)) return false;
      return fail(`${field.name}: expected true or false, found ${t.text}`);
    }
    if (INT_TYPES.has(field.type)) {
      if (t.kind !== 'number' || !/^-?(0[xX][0-9a-fA-F]+|\d+)$/.test(t.text)) fail(`${field.name}: expected an integer, found ${t.text}`);
      const v = Number(t.text);
      if (field.type.startsWith('uint') && v < 0) fail(`${field.name}: ${field.type} cannot be negative`);
      if (field.type.endsWith('32') && Math.abs(v) > 0xffffffff) fail(`${field.name}: ${t.text} does not fit ${field.type}`);
      return v;
    }
    if (FLOAT_TYPES.has(field.type)) {
      if (t.kind === 'number') return Number(t.text.replace(/[fF]$/, '').replace(/^(-?)inf$/, '$1Infinity').replace(/^-?nan$/, 'NaN'));
      if (t.kind === 'ident' && /^-?(inf|infinity|nan)$/i.test(t.text)) return Number(t.text.replace(/inf(inity)?/i, 'Infinity').replace(/nan/i, 'NaN'));
      return fail(`${field.name}: expected a number, found ${t.text}`);
    }
    return fail(`${field.name}: type ${field.type} is not supported`);
  };

  /** One `{ key: K value: V }` entry of a map field; returns [key as an object key, value]. */
  const parseMapEntry = (field: protobuf.MapField): [string, unknown] => {
    const open = next();
    if (open.kind !== 'punct' || (open.text !== '{' && open.text !== '<')) fail(`${field.name}: expected "{"`);
    const close = open.text === '{' ? '}' : '>';
    const rt = field.resolve().resolvedType;
    let key: unknown;
    let value: unknown;
    while (!accept(close)) {
      const name = next();
      if (name.text === 'key') {
        if (key !== undefined) fail(`${field.name}: an entry has two keys`);
        expect(':');
        key = parseScalar(new protobuf.Field('key', 1, field.keyType));
      } else if (name.text === 'value') {
        if (value !== undefined) fail(`${field.name}: an entry has two values`);
        if (rt instanceof protobuf.Type) {
          accept(':');
          const o = next();
          if (o.kind !== 'punct' || (o.text !== '{' && o.text !== '<')) fail(`${field.name}: expected "{" after value`);
          value = parseMessageBody(rt, o.text === '{' ? '}' : '>');
        } else {
          expect(':');
          value = parseScalar(field);
        }
      } else fail(`${field.name}: a map entry has only "key" and "value", found "${name.text}"`);
      accept(',') || accept(';');
    }
    if (key === undefined) fail(`${field.name}: an entry has no key`);
    return [String(key), value ?? (rt instanceof protobuf.Type ? {} : undefined)];
  };

  const parseMessageBody = (msgType: protobuf.Type, close: string | undefined): Obj => {
    const obj: Obj = {};
    for (;;) {
      const t = peek();
      if (!t) {
        if (close) fail(`missing "${close}"`);
        return obj;
      }
      if (close && t.kind === 'punct' && t.text === close) {
        pos++;
        return obj;
      }
      if (t.kind !== 'ident') fail(`expected a field name, found "${t.text}"`);
      pos++;
      const field = msgType.fields[t.text];
      if (!field) fail(`${msgType.name} has no field "${t.text}"`);
      if (field instanceof protobuf.MapField) {
        const map = (obj[field.name] ??= {}) as Obj;
        const entries: Array<[string, unknown]> = [];
        accept(':');
        if (accept('[')) {
          if (!accept(']')) {
            do entries.push(parseMapEntry(field));
            while (accept(','));
            expect(']');
          }
        } else entries.push(parseMapEntry(field));
        for (const [k, v] of entries) {
          if (k in map) fail(`${field.name}: key ${JSON.stringify(k)} is given more than once`);
          map[k] = v;
        }
        accept(',') || accept(';');
        continue;
      }
      const rt = field!.resolve().resolvedType;
      const isMessage = rt instanceof protobuf.Type;
      const hadColon = accept(':');
      if (!isMessage && !hadColon) fail(`${t.text}: a scalar field needs ":"`);
      const values: unknown[] = [];
      const one = () => {
        if (isMessage) {
          const open = next();
          if (open.kind !== 'punct' || (open.text !== '{' && open.text !== '<')) fail(`${t.text}: expected "{"`);
          return parseMessageBody(rt, open.text === '{' ? '}' : '>');
        }
        return parseScalar(field!);
      };
      if (accept('[')) {
        if (!field!.repeated) fail(`${t.text} is not a repeated field: a list is not allowed`);
        if (!accept(']')) {
          do values.push(one());
          while (accept(','));
          expect(']');
        }
      } else values.push(one());
      if (field!.repeated) obj[field!.name] = [...((obj[field!.name] as unknown[]) ?? []), ...values];
      else {
        if (obj[field!.name] !== undefined) fail(`${t.text} is given more than once but is not repeated`);
        if (field!.partOf) {
          const clash = field!.partOf.fieldsArray.find((f) => f !== field && obj[f.name] !== undefined);
          if (clash) fail(`${t.text} and ${clash.name} are alternatives (oneof ${field!.partOf.name}): give only one`);
        }
        obj[field!.name] = values[0];
      }
      accept(',') || accept(';');
    }
  };

  return parseMessageBody(type, undefined);
}
