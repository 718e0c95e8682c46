export const OUTPUT: string;
export function isCurrent(): boolean;
export function build(): Promise<void>;
