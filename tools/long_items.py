#!/usr/bin/env python3
"""Lists the longest source files and every function over 120 lines, leaving out
#[cfg(test)] items: the size limits of docs (issue 20). A brace counter, not a
parser: good enough for rustfmt-formatted code. Usage: python3 tools/long_items.py src cnn-macros/src cnnc-cli/src"""
import re,sys,os
def strip_tests(lines):
    out=[];skip=0;depth=0;i=0
    while i<len(lines):
        l=lines[i]
        if re.match(r'\s*#\[cfg\(test\)\]',l):
            # skip next item
            j=i+1; d=0; started=False
            while j<len(lines):
                d+=lines[j].count('{')-lines[j].count('}')
                if '{' in lines[j]: started=True
                if started and d<=0: break
                if not started and lines[j].rstrip().endswith(';'): break
                j+=1
            i=j+1; continue
        out.append(l); i+=1
    return out
res=[];files=[]
for root in sys.argv[1:]:
  for dp,dn,fn in os.walk(root):
    for f in fn:
      if not f.endswith('.rs'): continue
      p=os.path.join(dp,f); lines=open(p).read().split('\n')
      ls=strip_tests(lines)
      files.append((len(ls),p))
      for i,l in enumerate(ls):
        m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(extern "C"\s+)?fn\s+(\w+)',l)
        if m:
          d=0;started=False
          for j in range(i,len(ls)):
            d+=ls[j].count('{')-ls[j].count('}')
            if '{' in ls[j]: started=True
            if started and d<=0: break
            if not started and ls[j].rstrip().endswith(';'): break
          n=j-i+1
          if n>120: res.append((n,p,m.group(6)))
for n,p in sorted(files,reverse=True)[:8]: print(n,p)
print('--- fns >120')
for r in sorted(res,reverse=True): print(*r)
