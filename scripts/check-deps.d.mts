/** Layer of each package: a package may depend only on packages of a lower layer. */
export declare const LAYER: Readonly<Record<string, number>>
/** Every layering and import-cycle problem under `root` (a checkout with a packages/ folder). */
export declare function checkDeps(root?: string): string[]
