// A page of a result form made ready on the phone (docs/uploads.md, "The upload page on a
// phone"): a photo shrunk to at most 2048 px on its long side (JPEG, quality 0.85, turned the
// way its EXIF orientation says), the SHA-256 of the original recorded, and the original's EXIF
// time and place read; a PDF, or a photo already small and upright, passes as it is.
"use strict";

window.UnggahPhoto = (() => {
  const LONG_SIDE = 2048;
  const QUALITY = 0.85;

  async function sha256Hex(bytes) {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  function startsWith(bytes, ...signature) {
    return signature.every((value, index) => bytes[index] === value);
  }

  // What the server takes by content: JPEG, PNG, PDF.
  function kindOf(bytes) {
    if (startsWith(bytes, 0xff, 0xd8, 0xff)) return "image/jpeg";
    if (startsWith(bytes, 0x89, 0x50, 0x4e, 0x47)) return "image/png";
    if (startsWith(bytes, 0x25, 0x50, 0x44, 0x46, 0x2d)) return "application/pdf";
    return "";
  }

  // --- EXIF, read from the JPEG's APP1 segment: orientation, time, GPS. Anything malformed
  // reads as nothing known (a camera's EXIF is advice, never a reason to refuse a photo).

  const TYPE_SIZES = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8 };

  function tiffReader(view, start) {
    const little = view.getUint16(start) === 0x4949;
    const u16 = (at) => view.getUint16(start + at, little);
    const u32 = (at) => view.getUint32(start + at, little);
    // The entries of the IFD at `offset`, by tag: a function reading each one's values.
    function ifd(offset) {
      const entries = new Map();
      const count = u16(offset);
      for (let i = 0; i < count; i += 1) {
        const at = offset + 2 + i * 12;
        const type = u16(at + 2);
        const items = u32(at + 4);
        const size = (TYPE_SIZES[type] || 0) * items;
        const where = size <= 4 ? at + 8 : u32(at + 8);
        entries.set(u16(at), () => values(type, items, where));
      }
      return entries;
    }
    function values(type, items, where) {
      if (where + (TYPE_SIZES[type] || 0) * items > view.byteLength - start) {
        throw new RangeError("EXIF value past its segment");
      }
      if (type === 2) {
        const chars = [];
        for (let i = 0; i < items; i += 1) chars.push(view.getUint8(start + where + i));
        return String.fromCharCode(...chars).replace(/\0+$/, "");
      }
      const read = [];
      for (let i = 0; i < items; i += 1) {
        if (type === 3) read.push(u16(where + i * 2));
        else if (type === 4) read.push(u32(where + i * 4));
        else if (type === 5) read.push(u32(where + i * 8) / u32(where + i * 8 + 4));
      }
      return read;
    }
    return { ifd, first: u32(4) };
  }

  function exifSegment(view) {
    let at = 2;
    while (at + 4 <= view.byteLength && view.getUint8(at) === 0xff) {
      const marker = view.getUint8(at + 1);
      const length = view.getUint16(at + 2);
      if (marker === 0xe1 && view.getUint32(at + 4) === 0x45786966) {
        return at + 10; // "Exif\0\0", then the TIFF header
      }
      if (marker === 0xda) break; // the image data: no EXIF after it
      at += 2 + length;
    }
    return -1;
  }

  // "2024:11:27 13:05:10" (and "+08:00" when the camera said its zone) as ISO 8601, or "".
  function isoTime(text, zone) {
    const match = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text || "");
    if (!match) return "";
    const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
    const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
    const real =
      year >= 1990 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
      hour < 24 && minute < 60 && second < 60;
    if (!real) return "";
    const iso = `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}`;
    return /^[+-]\d{2}:\d{2}$/.test(zone || "") ? iso + zone : iso;
  }

  function degrees(parts, reference, limit) {
    if (!Array.isArray(parts) || parts.length !== 3 || !parts.every(Number.isFinite)) return null;
    const value = parts[0] + parts[1] / 60 + parts[2] / 3600;
    const signed = reference === "S" || reference === "W" ? -value : value;
    return Math.abs(signed) <= limit ? signed : null;
  }

  function readExif(buffer) {
    const found = { orientation: 1, takenAt: "", location: "" };
    try {
      const view = new DataView(buffer);
      const start = exifSegment(view);
      if (start < 0) return found;
      const tiff = tiffReader(view, start);
      const main = tiff.ifd(tiff.first);
      const read = (entries, tag) => (entries.has(tag) ? entries.get(tag)() : undefined);
      found.orientation = (read(main, 0x0112) || [1])[0];
      const exif = main.has(0x8769) ? tiff.ifd(read(main, 0x8769)[0]) : new Map();
      found.takenAt =
        isoTime(read(exif, 0x9003), read(exif, 0x9011)) || isoTime(read(main, 0x0132), "");
      if (main.has(0x8825)) {
        const gps = tiff.ifd(read(main, 0x8825)[0]);
        const latitude = degrees(read(gps, 2), read(gps, 1), 90);
        const longitude = degrees(read(gps, 4), read(gps, 3), 180);
        if (latitude !== null && longitude !== null) {
          found.location = `${+latitude.toFixed(6)},${+longitude.toFixed(6)}`;
        }
      }
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
    return found;
  }

  // --- Shrinking

  async function encode(bitmap, width, height) {
    if (typeof OffscreenCanvas === "function") {
      const canvas = new OffscreenCanvas(width, height);
      draw(canvas, bitmap, width, height);
      return canvas.convertToBlob({ type: "image/jpeg", quality: QUALITY });
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    draw(canvas, bitmap, width, height);
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("toBlob"))), "image/jpeg", QUALITY);
    });
  }

  function draw(canvas, bitmap, width, height) {
    const context = canvas.getContext("2d");
    context.imageSmoothingQuality = "high";
    // JPEG has no transparency: a PNG's clear parts become white paper, not black.
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0, width, height);
  }

  // The page as it will be sent: {blob, type, name, sha256, width, height, original}, where
  // original is {sha256, takenAt, location} of the photo before it was shrunk ("" unknown; no
  // sha256 when nothing was changed). Throws a TypeError for what is neither a picture this
  // browser can decode nor a PDF.
  async function prepare(file) {
    const buffer = await file.arrayBuffer();
    const kind = kindOf(new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength)));
    const original = { sha256: "", takenAt: "", location: "" };
    if (kind === "application/pdf") {
      const blob = new Blob([buffer], { type: kind });
      return { blob, type: kind, name: file.name, sha256: await sha256Hex(buffer), original };
    }
    const exif = kind === "image/jpeg" ? readExif(buffer) : { orientation: 1 };
    original.takenAt = exif.takenAt || "";
    original.location = exif.location || "";
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (error) {
      throw new TypeError(`not a picture: ${error.message}`);
    }
    const long = Math.max(bitmap.width, bitmap.height);
    const name = file.name.replace(/\.[^.]*$/, "") || "halaman";
    if (long <= LONG_SIDE && kind && exif.orientation === 1) {
      const size = { width: bitmap.width, height: bitmap.height };
      bitmap.close();
      const blob = new Blob([buffer], { type: kind });
      return { blob, type: kind, name: file.name, sha256: await sha256Hex(buffer), original, ...size };
    }
    const scale = Math.min(1, LONG_SIDE / long);
    const width = Math.round(bitmap.width * scale);
    const height = Math.round(bitmap.height * scale);
    const blob = await encode(bitmap, width, height);
    bitmap.close();
    original.sha256 = await sha256Hex(buffer);
    const sha256 = await sha256Hex(await blob.arrayBuffer());
    return { blob, type: "image/jpeg", name: `${name}.jpg`, sha256, width, height, original };
  }

  return { prepare, readExif, sha256Hex, LONG_SIDE };
})();
