export declare const INCLUDE_DIRS: string[];
export declare const PROTO_FILES: string[];
export declare const LOADER_OPTIONS: {
  keepCase: boolean;
  longs: StringConstructor;
  enums: StringConstructor;
  defaults: boolean;
  oneofs: boolean;
};
