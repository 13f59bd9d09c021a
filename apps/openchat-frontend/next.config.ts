import type { NextConfig } from "next";

import { STATIC_SECURITY_HEADERS } from "./lib/security-headers";

const nextConfig: NextConfig = {
  output: "standalone",
  reactStrictMode: true,
  poweredByHeader: false,
  async headers() {
    // Pages and static files; /api/* responses carry the same ones from the backend.
    return [{ source: "/((?!api/).*)", headers: STATIC_SECURITY_HEADERS }];
  },
};

export default nextConfig;
