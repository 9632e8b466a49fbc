// Which network addresses an image URL may reach. The server fetches URLs on a client's
// behalf, so without this a client could read services that only the server can see
// (cloud metadata at 169.254.169.254, admin ports on 127.0.0.1, the private network).
import { BlockList, isIP } from 'node:net';

// Ranges that are not the public internet (IANA special-purpose registries).
const PRIVATE_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const PRIVATE_V6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: would reach an IPv4 address we did not check
  ['100::', 64], // discard
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

export interface AddressPolicy {
  /** True when the host name itself is allow-listed, so its addresses need no check. */
  isHostAllowed(hostname: string): boolean;
  isAddressAllowed(address: string): boolean;
}

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** URL host names keep IPv6 brackets and may end with a root dot; compare without them. */
export function normalizeHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

function addAllowEntry(entry: string, hosts: Set<string>, allowed: BlockList): void {
  const [base, prefix] = entry.split('/');
  const kind = isIP(base);
  if (kind === 0) {
    if (prefix !== undefined) throw new Error(`url allow entry "${entry}" has a prefix but no IP address`);
    hosts.add(normalizeHost(base));
    return;
  }
  const type = kind === 6 ? 'ipv6' : 'ipv4';
  if (prefix === undefined) allowed.addAddress(base, type);
  else allowed.addSubnet(base, Number(prefix), type);
}

/**
 * `allow` holds host names, IP addresses and CIDR ranges. Public addresses are always
 * allowed; private, loopback and link-local ones only when allow-listed.
 */
export function createAddressPolicy(allow: readonly string[]): AddressPolicy {
  const blocked = new BlockList();
  for (const [net, prefix] of PRIVATE_V4) blocked.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of PRIVATE_V6) blocked.addSubnet(net, prefix, 'ipv6');
  const hosts = new Set<string>();
  const allowed = new BlockList();
  for (const entry of allow) addAllowEntry(entry, hosts, allowed);
  return {
    isHostAllowed: (hostname) => hosts.has(normalizeHost(hostname)),
    isAddressAllowed(address) {
      const type = family(address);
      return !blocked.check(address, type) || allowed.check(address, type);
    },
  };
}
