import { describe, expect, it } from 'vitest';
import { createAddressPolicy } from '../../src/server/intake/address-policy.ts';
import { decodeBase64Image } from '../../src/server/intake/base64.ts';
import { probeImage, sniffFormat } from '../../vision/probe.ts';
import { sceneAs, scenePng } from './support/images.ts';

describe('address policy', () => {
  const policy = createAddressPolicy([]);

  it.each([
    '127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '64:ff9b::7f00:1',
  ])('refuses %s', (address) => {
    expect(policy.isAddressAllowed(address)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows public %s', (address) => {
    expect(policy.isAddressAllowed(address)).toBe(true);
  });

  it('allows allow-listed hosts, addresses and ranges', () => {
    const allowing = createAddressPolicy(['127.0.0.1', '10.1.0.0/16', 'Images.Internal']);
    expect(allowing.isAddressAllowed('127.0.0.1')).toBe(true);
    expect(allowing.isAddressAllowed('127.0.0.2')).toBe(false);
    expect(allowing.isAddressAllowed('10.1.200.3')).toBe(true);
    expect(allowing.isAddressAllowed('10.2.0.1')).toBe(false);
    expect(allowing.isHostAllowed('images.internal.')).toBe(true);
    expect(allowing.isHostAllowed('localhost')).toBe(false);
  });
});

describe('base64 images', () => {
  it('decodes raw, data: URL, URL-safe and wrapped base64 alike', async () => {
    const png = await scenePng();
    const std = png.toString('base64');
    for (const input of [std, `data:image/png;base64,${std}`, png.toString('base64url'), std.replace(/(.{60})/g, '$1\n')]) {
      expect(Buffer.from(decodeBase64Image(input, 1 << 20)).equals(png)).toBe(true);
    }
  });

  it('checks the size before decoding', () => {
    expect(() => decodeBase64Image('A'.repeat(4000), 1000)).toThrow(/IMAGE_TOO_LARGE|limit is 1000/);
  });
});

describe('probe', () => {
  it('sniffs the supported formats and reads the size without decoding', async () => {
    expect(sniffFormat(await scenePng())).toBe('png');
    expect(sniffFormat(await sceneAs('jpeg'))).toBe('jpeg');
    expect(sniffFormat(await sceneAs('webp'))).toBe('webp');
    expect(await probeImage(await sceneAs('webp', 96), 1 << 20)).toEqual({ format: 'webp', width: 96, height: 96, hasAlpha: false });
  });
});
