import { ChatShell } from "@/components/chat-shell";

/** The chat UI lives in the layout so it stays mounted while the URL moves between conversations. */
export default function ChatLayout({ children }: { children: React.ReactNode }) {
  return (
    <>
      <ChatShell />
      {children}
    </>
  );
}
