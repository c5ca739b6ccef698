; Inno Setup 6 script for the Windows installer (packaging/README.md, "Windows").
;
; First freeze the app on Windows (from the repository root):
;   pyinstaller --noconfirm packaging\linnaeus.spec
; which leaves dist\linnaeus\ (linnaeus.exe, linnaeus-desktop.exe, _internal\) and
; build\linnaeus\icons\linnaeus.ico; then:
;   iscc /DVersion=0.1.0 packaging\windows\linnaeus.iss
; writes dist\Linnaeus-0.1.0-setup.exe.
;
; The installer needs no administrator rights (hospital and lab workstations often
; give none): it installs for the current user unless the user chooses all users.
; The Start menu starts linnaeus-desktop.exe (no console window); the optional
; "linnaeus" command on PATH is linnaeus.exe, the same program with a console.

#ifndef Version
  #define Version "0.1.0"
#endif
#define Root "..\.."

[Setup]
AppId={{4E0C8C2A-6C1B-4B7E-9A57-3F1D2E8B6A41}
AppName=Linnaeus
AppVersion={#Version}
AppVerName=Linnaeus {#Version}
AppPublisher=The Linnaeus developers
DefaultDirName={autopf}\Linnaeus
DefaultGroupName=Linnaeus
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\dist
OutputBaseFilename=Linnaeus-{#Version}-setup
SetupIconFile={#Root}\build\linnaeus\icons\linnaeus.ico
UninstallDisplayIcon={app}\linnaeus.exe
; The bundle is over a gigabyte; lzma2 "normal" packs it in minutes rather than an hour.
Compression=lzma2/normal
SolidCompression=yes
DiskSpanning=no
ChangesEnvironment=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the ""linnaeus"" command to PATH (for the command line)"; Flags: unchecked

[Files]
Source: "{#Root}\dist\linnaeus\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Linnaeus"; Filename: "{app}\linnaeus-desktop.exe"; Comment: "Sort folders of images into classes offline"
Name: "{autodesktop}\Linnaeus"; Filename: "{app}\linnaeus-desktop.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\linnaeus-desktop.exe"; Description: "{cm:LaunchProgram,Linnaeus}"; Flags: nowait postinstall skipifsilent

[Code]
function EnvironmentKey(var Root: Integer): String;
begin
  if IsAdminInstallMode then begin
    Root := HKEY_LOCAL_MACHINE;
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment';
  end else begin
    Root := HKEY_CURRENT_USER;
    Result := 'Environment';
  end;
end;

function PathWithout(Path, Dir: String): String;
var
  Padded: String;
  Start: Integer;
begin
  Padded := ';' + Path + ';';
  Start := Pos(';' + Uppercase(Dir) + ';', Uppercase(Padded));
  if Start > 0 then
    Delete(Padded, Start, Length(Dir) + 1);
  Result := Copy(Padded, 2, Length(Padded) - 2);
end;

procedure SetPathEntry(Add: Boolean);
var
  Root: Integer;
  Key, Path, Dir: String;
begin
  Key := EnvironmentKey(Root);
  Dir := ExpandConstant('{app}');
  if not RegQueryStringValue(Root, Key, 'Path', Path) then
    Path := '';
  Path := PathWithout(Path, Dir);
  if Add then begin
    if Path <> '' then
      Path := Path + ';';
    Path := Path + Dir;
  end;
  RegWriteExpandStringValue(Root, Key, 'Path', Path);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    SetPathEntry(True);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    SetPathEntry(False);
end;
