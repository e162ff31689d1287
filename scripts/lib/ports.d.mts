export function ephemeralRange(): [number, number];
export function allocationBand(range?: [number, number]): [number, number];
export function freePort(): Promise<number>;
