"""The importable core of tempclr: no CLI code here, heavy imports stay inside modules."""
