#!/usr/bin/env node
// ajv.js - the Node.js peer of `weir validate`: NDJSON against a JSON Schema
// (draft 2020-12) with Ajv, one thread.
//
//   node bench/validate/ajv.js SCHEMA FILE
//
// Prints "N valid, M invalid" on stderr, like weir validate, and exits 1 when
// some line is invalid. Each line goes through JSON.parse and then the
// validator Ajv compiled from the schema (ajv/dist/2020, its default
// options: no type coercion, so strict as the seed's validate_json).
//
// Reading is done to be fast, so the peer is measured at its best: 1 MB
// chunks, one UTF-8 decode per chunk, and lines cut out of the decoded
// string. JSON.parse never sees the bytes, and Node's decoder replaces bad
// UTF-8 with U+FFFD instead of failing, which would make such lines valid;
// so a line holding U+FFFD is checked again on its bytes (buffer.isUtf8),
// which keeps the common path free of per-line byte work.
'use strict';

const fs = require('fs');
const { isUtf8 } = require('buffer');
const Ajv2020 = require('ajv/dist/2020');

const CHUNK = 1 << 20; // bigger chunks cost RSS and gain no CPU

function main(argv) {
    if (argv.length !== 2) {
        process.stderr.write('usage: node ajv.js SCHEMA FILE\n');
        return 2;
    }
    const schema = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
    const validate = new Ajv2020().compile(schema);
    const fd = fs.openSync(argv[1], 'r');
    let buf = Buffer.allocUnsafe(CHUNK);
    let have = 0; // bytes in buf carried over from the last read
    let valid = 0;
    let invalid = 0;
    let eof = false;

    const check = (line) => {
        let obj;
        try {
            obj = JSON.parse(line);
        } catch (e) {
            invalid++;
            return;
        }
        if (validate(obj)) valid++;
        else invalid++;
    };

    while (!eof) {
        if (have === buf.length) {
            // One line longer than the buffer: grow it.
            const bigger = Buffer.allocUnsafe(buf.length * 2);
            buf.copy(bigger, 0, 0, have);
            buf = bigger;
        }
        const n = fs.readSync(fd, buf, have, buf.length - have, null);
        if (n === 0) eof = true;
        const end = have + n;
        // Whole lines only; at EOF the rest is the last line.
        const cut = eof ? end : buf.lastIndexOf(10, end - 1) + 1;
        if (cut > 0) {
            const text = buf.toString('utf8', 0, cut);
            let pos = 0; // in text
            let bytePos = 0; // in buf, where text[anchor] starts
            let anchor = 0;
            while (pos < text.length) {
                let nl = text.indexOf('\n', pos);
                if (nl < 0) nl = text.length;
                if (nl > pos) {
                    const line = text.slice(pos, nl);
                    if (line.indexOf('\ufffd') < 0) {
                        check(line);
                    } else {
                        // Find the line's bytes: everything between the
                        // anchor and here decoded without U+FFFD, so its
                        // byte length is exact.
                        const start = bytePos + Buffer.byteLength(text.slice(anchor, pos));
                        let stop = buf.indexOf(10, start);
                        if (stop < 0 || stop > cut) stop = cut;
                        if (isUtf8(buf.subarray(start, stop))) check(line);
                        else invalid++;
                        anchor = nl + 1;
                        bytePos = stop + 1;
                    }
                }
                pos = nl + 1;
            }
        }
        buf.copy(buf, 0, cut, end);
        have = end - cut;
    }
    fs.closeSync(fd);
    process.stderr.write(`${valid} valid, ${invalid} invalid\n`);
    return invalid ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
